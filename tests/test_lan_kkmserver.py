"""The KKMServer compatible ``/Execute`` API on the real engine and simulator.

Fixtures are our own, written from what esaulkov/kkmserver's recorded cassettes
(``spec/support/vcr_cassettes/register.yml``, ``close_shift_error.yml``,
``depositing_cash.yml``, ``get_check.yml``, ``open_cash_drawer.yml``, ``x_report.yml``)
show of the real shapes: ``List`` → ``ListUnit``; ``RegisterCheck`` with ``CheckStrings``
of ``PrintText``/``Register``/``BarCode`` → ``CheckNumber``, ``SessionNumber``,
``QRCode``; an error → ``Status`` 2 and the text in ``Error``; every answer echoes
``Command``, ``IdCommand`` and ``NumDevice``. ``IdCommand`` is the idempotency key.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from lan_support import InProcessLan, in_process_lan, wait_until


@pytest.fixture
async def lan(tmp_path: Path) -> AsyncIterator[InProcessLan]:
    async for stack in in_process_lan(tmp_path):
        yield stack


async def execute(lan: InProcessLan, body: dict[str, Any], path: str = "/Execute") -> Any:
    response = await lan.client().post(path, json=body)
    assert response.status_code == 200, response.text
    return response.json()


def register_check(id_command: str, **extra: Any) -> dict[str, Any]:
    """A cash-and-card sell shaped like the recorded RegisterCheck."""
    body: dict[str, Any] = {
        "Command": "RegisterCheck",
        "NumDevice": 0,
        "IdCommand": id_command,
        "IsFiscalCheck": True,
        "TypeCheck": 0,
        "NotPrint": False,
        "NumberCopies": 0,
        "CashierName": "Иванов П.С.",
        "CashierVATIN": "500100732259",
        "ClientAddress": "",
        "TaxVariant": "",
        "CheckStrings": [
            {"PrintText": {"Text": '>#2#<ООО "Рога и копыта"', "Font": 1}},
            {
                "Register": {
                    "Name": "Сапоги женские DF-3099-1",
                    "Quantity": 3,
                    "Price": 100,
                    "Amount": 300,
                    "Department": 0,
                    "Tax": 22,
                    "SignMethodCalculation": 4,
                    "SignCalculationObject": 1,
                    "MeasurementUnit": "пара",
                },
            },
        ],
        "Cash": 200,
        "ElectronicPayment": 100,
        "AdvancePayment": 0,
        "Credit": 0,
        "CashProvision": 0,
    }
    body.update(extra)
    return body


async def test_list_and_get_data_kkt(lan: InProcessLan) -> None:
    await wait_until(lambda: lan.engine.status().device is not None, "device facts polled")
    listed = await execute(lan, {"Command": "List"})
    assert listed["Status"] == 0 and listed["Command"] == "List"
    (unit,) = listed["ListUnit"]
    assert unit["NumDevice"] == 1 and unit["OnOff"] is True
    assert {"KktNumber", "FnNumber", "RegNumber", "FN_DateEnd", "OFD_NumErrorDoc"} <= unit.keys()
    assert unit["FnNumber"]
    info = await execute(lan, {"Command": "GetDataKKT", "NumDevice": 1})
    assert info["Status"] == 0 and info["Info"]["FnNumber"] == unit["FnNumber"]


async def test_register_check_prints_once_per_id_command(lan: InProcessLan) -> None:
    id_command = str(uuid.uuid4())
    first = await execute(lan, register_check(id_command))
    assert first["Status"] == 0, first
    assert first["IdCommand"] == id_command and first["Command"] == "RegisterCheck"
    assert first["CheckNumber"] >= 1 and first["SessionNumber"] >= 1
    assert first["QRCode"].startswith("t=") and "&s=300.00" in first["QRCode"]
    again = await execute(lan, register_check(id_command))
    assert again == first, "a repeated IdCommand answers the first outcome"
    assert lan.sells == 1


async def test_async_command_then_get_rezult(lan: InProcessLan) -> None:
    lan.device.offline = True
    id_command = str(uuid.uuid4())
    queued = await execute(lan, register_check(id_command, Timeout=0))
    assert queued["Status"] == 4, queued  # NotRun: still in the queue
    lan.device.offline = False

    async def finished() -> Any:
        answer = await execute(lan, {"Command": "GetRezult", "IdCommand": id_command})
        return answer if answer["Rezult"]["Status"] == 0 else None

    answer = await wait_until(finished, "the check printed")
    assert answer["Command"] == "GetRezult" and answer["Rezult"]["CheckNumber"] >= 1
    missing = await execute(lan, {"Command": "GetRezult", "IdCommand": "nope"})
    assert missing["Status"] == 3


async def test_shift_reports_cash_and_drawer(lan: InProcessLan) -> None:
    cashier = {"CashierName": "Иванов П.С.", "CashierVATIN": "500100732259"}
    opened = await execute(lan, {"Command": "OpenShift", "IdCommand": "s1", **cashier})
    assert opened["Status"] == 0 and opened["SessionNumber"] >= 1
    again = await execute(lan, {"Command": "OpenShift", "IdCommand": "s1b", **cashier})
    assert again["Status"] == 2 and "(код ошибки 83)" in again["Error"], "the register's error"
    assert (await execute(lan, {"Command": "XReport", "IdCommand": "x1"}))["Status"] == 0
    deposit = {"Command": "DepositingCash", "IdCommand": "c1", "Amount": 1.01, **cashier}
    assert (await execute(lan, deposit))["Status"] == 0
    payout = {"Command": "PaymentCash", "IdCommand": "c2", "Amount": 1.01, **cashier}
    assert (await execute(lan, payout, "/Execute/sync"))["Status"] == 0
    drawer = await execute(lan, {"Command": "OpenCashDrawer", "IdCommand": "d1"})
    assert drawer["Status"] == 0 and drawer["UnitName"] == "kassa-7"
    await execute(lan, register_check("sale-1"))
    data = await execute(lan, {"Command": "GetDataCheck", "IdCommand": "g1", "FiscalNumber": 0})
    assert data["Status"] == 0 and data["RegisterCheck"]["fiscalDocumentNumber"] >= 1
    closed = await execute(lan, {"Command": "ZReport", "IdCommand": "z1", **cashier})
    assert closed["Status"] == 0


async def test_bad_commands_answer_status_2_and_reach_nothing(lan: InProcessLan) -> None:
    assert (await execute(lan, {"Command": "Fly", "IdCommand": "f1"}))["Status"] == 2
    assert (await execute(lan, {"Command": "List", "NumDevice": 5}))["Status"] == 2
    bad_tax = register_check("t1")
    bad_tax["CheckStrings"][1]["Register"]["Tax"] = 33
    answer = await execute(lan, bad_tax)
    assert answer["Status"] == 2 and "Tax" in answer["Error"]
    assert (await execute(lan, {"Command": "DepositingCash", "Amount": -5}))["Status"] == 2
    response = await lan.client().post("/Execute", content=b"[1,")
    assert response.json()["Status"] == 2
    assert lan.journal.counts_by_state() == {}
    anonymous = await lan.client(auth=None).post("/Execute", json={"Command": "List"})
    assert anonymous.status_code == 401 and anonymous.json()["Status"] == 2
