"""The paper tape of the simulated register: demo marking, line width, fiscal block, QR."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.registers.tape import DEMO_MARK, qr_lines, render_document

MOSCOW = timezone(timedelta(hours=3))
QR_GLYPHS = set("▀▄█ ")


@pytest.fixture(params=[32, 48])
def line_width(request: pytest.FixtureRequest) -> int:
    width: int = request.param
    return width


@pytest.fixture
def tape() -> list[str]:
    return []


@pytest.fixture
def printing_register(
    tmp_path: Path, line_width: int, tape: list[str]
) -> Iterator[SimulatorRegister]:
    register = SimulatorRegister(
        tmp_path / "simulator",
        clock=lambda: datetime(2026, 11, 22, 21, 5, 41, tzinfo=MOSCOW),
        line_width=line_width,
        tape=tape.append,
    )
    register.open()
    yield register
    register.close()


SELL: dict[str, Any] = {
    "type": "sell",
    "taxationType": "usnIncome",
    "companyInfo": {"email": "shop@example.ru"},
    "paymentsAddress": "https://shop.example.ru",
    "operator": {"name": "Иванова Александра Константиновна", "vatin": "123654789507"},
    "clientInfo": {"emailOrPhone": "+79161234567"},
    "items": [
        {
            "type": "position",
            "name": "Годовая подписка на облачную бухгалтерию для малого бизнеса, тариф «Про»",
            "price": 12345.67,
            "quantity": 2,
            "amount": 24691.34,
            "tax": {"type": "vat22"},
        },
        {
            "type": "position",
            "name": "Доставка",
            "price": 300.0,
            "quantity": 1,
            "amount": 300.0,
            "tax": {"type": "none"},
        },
        {"type": "text", "text": "Заказ Bitrix24 #4512", "alignment": "center"},
    ],
    "payments": [{"type": "cash", "sum": 25000.0}, {"type": "electronically", "sum": 0.0}],
    "total": 24991.34,
}


def text_lines(document: str) -> list[str]:
    """The lines of a printed document that are not part of the QR drawing."""
    return [line for line in document.splitlines() if not set(line) <= QR_GLYPHS or not line]


def qr_part(document: str) -> list[str]:
    return [line for line in document.splitlines() if line.strip() and set(line) <= QR_GLYPHS]


def test_every_document_is_marked_demo_and_fits_the_line_width(
    printing_register: SimulatorRegister, tape: list[str], line_width: int
) -> None:
    register = printing_register
    register.process({"type": "openShift", "operator": SELL["operator"]})
    register.process(SELL)
    register.process({"type": "cashIn", "cashSum": 1000})
    register.process({"type": "reportX"})
    register.process({**SELL, "type": "sellCorrection", "correctionType": "instruction"})
    register.process({"type": "closeShift"})
    assert len(tape) == 6
    for document in tape:
        lines = document.splitlines()
        assert DEMO_MARK in lines[1], "the demo marking must open the document"
        assert DEMO_MARK in lines[-2], "the demo marking must close the document"
        too_wide = [line for line in text_lines(document) if len(line) > line_width]
        assert too_wide == []


def test_receipt_shows_items_money_and_fiscal_block(
    printing_register: SimulatorRegister, tape: list[str], line_width: int
) -> None:
    register = printing_register
    register.process({"type": "openShift"})
    params = register.process(SELL)["fiscalParams"]
    document = tape[-1]
    flat = " ".join(" ".join(text_lines(document)).split())
    for expected in (
        "КАССОВЫЙ ЧЕК",
        "ПРИХОД",
        "Годовая подписка",
        "2 × 12345.67",
        "=24691.34",
        "НДС 22%",
        "ИТОГ",
        "=24991.34",
        "НАЛИЧНЫМИ",
        "СДАЧА",
        "=8.66",
        "СУММА НДС 22%",
        "=4452.54",
        f"ФН {params['fnNumber']}",
        f"ФД {params['fiscalDocumentNumber']}",
        f"ФП {params['fiscalDocumentSign'].zfill(10)}",
        f"РН ККТ {params['registrationNumber']}",
        "СМЕНА 1",
        "ЧЕК 1",
        "22.11.26 21:05",
        "Заказ Bitrix24 #4512",
    ):
        assert expected in flat, f"{expected!r} missing from the receipt"
    assert len(qr_part(document)) > 10


def test_qr_is_drawn_with_half_blocks_two_rows_per_line() -> None:
    lines = qr_lines("t=20261122T2105&s=1.00&fn=9999078900000961&i=3&fp=123&n=1")
    modules = len(lines[0])
    assert modules % 2 == 1 and modules >= 23  # version >= 1 plus a 1-module border
    assert len(lines) == (modules + 1) // 2
    assert all(len(line) == modules and set(line) <= QR_GLYPHS for line in lines)
    assert set(lines[0]) <= {" ", "▄"}  # the border row is light


def test_shift_reports_render_counters() -> None:
    document = render_document(
        {
            "kind": "closeShift",
            "serial": "00106900000001",
            "dateTime": "2026-11-22T21:05:00+03:00",
            "operator": {"name": "Кассир"},
            "fiscalParams": {
                "fiscalDocumentDateTime": "2026-11-22T21:05:00+03:00",
                "fiscalDocumentNumber": 9,
                "fiscalDocumentSign": "42",
                "fnNumber": "9999078900000961",
                "registrationNumber": "0000000001002292",
                "shiftNumber": 3,
                "receiptsCount": 5,
            },
            "summary": {"counts": {"sell": 4, "sellReturn": 1}, "totals": {"sell": "100.00"}},
        },
        width=32,
    )
    assert "ОТЧЁТ О ЗАКРЫТИИ СМЕНЫ" in document
    assert "ЧЕКОВ ЗА СМЕНУ                 5" in document
    assert "ПРИХОД (4)               =100.00" in document
    assert "ФП                    0000000042" in document
    with pytest.raises(ValueError, match="kind 'poem'"):
        render_document({"kind": "poem"})
