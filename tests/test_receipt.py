"""Valid tasks: parsing, computed values, Decimal money and the round trip to driver JSON."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel

from kassa_appliance.fiscal.receipt import (
    TASK_TYPES,
    BarcodeItem,
    CashTask,
    CorrectionTask,
    LastFiscalParamsTask,
    Position,
    QueryTask,
    ReceiptTask,
    ShiftTask,
    Task,
    TextItem,
    is_fiscal,
    parse_task,
    to_driver_json,
)
from kassa_appliance.registers.base import FISCAL_TASK_TYPES
from test_receipt_samples import correction, position, receipt, sample_sell

MINIMAL_TASKS: dict[str, dict[str, Any]] = {
    "sell": receipt(),
    "sellReturn": receipt(type="sellReturn"),
    "buy": receipt(type="buy"),
    "buyReturn": receipt(type="buyReturn"),
    "sellCorrection": correction(),
    "sellReturnCorrection": correction(type="sellReturnCorrection"),
    "buyCorrection": correction(type="buyCorrection", correctionType="instruction"),
    "buyReturnCorrection": correction(type="buyReturnCorrection"),
    "openShift": {"type": "openShift", "operator": {"name": "Иванов И.И."}},
    "closeShift": {"type": "closeShift"},
    "reportX": {"type": "reportX"},
    "cashIn": {"type": "cashIn", "cashSum": 1000},
    "cashOut": {"type": "cashOut", "cashSum": 250.50},
    "getShiftStatus": {"type": "getShiftStatus"},
    "getDeviceStatus": {"type": "getDeviceStatus"},
    "getDeviceInfo": {"type": "getDeviceInfo"},
    "getFnInfo": {"type": "getFnInfo"},
    "getFnStatus": {"type": "getFnStatus"},
    "getLastFiscalParams": {"type": "getLastFiscalParams", "forReceipt": True},
    "continuePrint": {"type": "continuePrint"},
}

EXPECTED_MODEL = {
    "sell": ReceiptTask,
    "sellReturn": ReceiptTask,
    "buy": ReceiptTask,
    "buyReturn": ReceiptTask,
    "sellCorrection": CorrectionTask,
    "sellReturnCorrection": CorrectionTask,
    "buyCorrection": CorrectionTask,
    "buyReturnCorrection": CorrectionTask,
    "openShift": ShiftTask,
    "closeShift": ShiftTask,
    "reportX": ShiftTask,
    "cashIn": CashTask,
    "cashOut": CashTask,
    "getShiftStatus": QueryTask,
    "getDeviceStatus": QueryTask,
    "getDeviceInfo": QueryTask,
    "getFnInfo": QueryTask,
    "getFnStatus": QueryTask,
    "getLastFiscalParams": LastFiscalParamsTask,
    "continuePrint": QueryTask,
}


def test_the_twenty_receipt_shift_cash_and_query_tasks_are_supported() -> None:
    # The service tasks of issue 11 (fiscal/receipt_service_tasks.py) are tested with them.
    assert set(EXPECTED_MODEL) <= set(TASK_TYPES)
    assert len(EXPECTED_MODEL) == 20


@pytest.mark.parametrize("task_type", sorted(MINIMAL_TASKS))
def test_each_task_type_parses_into_its_model(task_type: str) -> None:
    task = parse_task(MINIMAL_TASKS[task_type])
    assert type(task) is EXPECTED_MODEL[task_type]
    assert task.type == task_type


@pytest.mark.parametrize("task_type", sorted(MINIMAL_TASKS))
def test_is_fiscal_agrees_with_the_register_protocol(task_type: str) -> None:
    assert is_fiscal(parse_task(MINIMAL_TASKS[task_type])) is (task_type in FISCAL_TASK_TYPES)


def test_sample_sell_from_the_atol_notes_parses() -> None:
    task = parse_task(sample_sell())
    assert isinstance(task, ReceiptTask)
    assert task.operator is not None and task.operator.vatin == "123654789507"
    assert task.clientInfo is not None and task.clientInfo.emailOrPhone == "+79161234567"
    first, second = task.items
    assert isinstance(first, Position) and isinstance(second, TextItem)
    assert first.price == Decimal("1500.00")
    assert first.measurementUnit == "piece"
    assert first.tax.type == "none"
    assert second.alignment == "center"
    assert task.total == Decimal("1500.00")
    assert task.change == Decimal("0.00")


def test_sample_sell_round_trips_to_the_same_driver_json() -> None:
    assert to_driver_json(parse_task(sample_sell())) == sample_sell()


def test_driver_json_has_json_numbers_and_no_null_fields() -> None:
    driver = to_driver_json(parse_task(sample_sell()))
    item = driver["items"][0]
    assert item == {
        "type": "position",
        "name": "Консультация",
        "price": 1500.0,
        "quantity": 1.0,
        "amount": 1500.0,
        "tax": {"type": "none"},
        "measurementUnit": "piece",
        "paymentMethod": "fullPayment",
        "paymentObject": "service",
    }
    assert all(type(item[key]) is float for key in ("price", "quantity", "amount"))
    assert type(driver["total"]) is float
    assert "correctionType" not in driver and "taxes" not in driver
    assert json.loads(json.dumps(driver)) == driver


def test_ten_kopecks_times_three_is_thirty_kopecks_exactly() -> None:
    task = parse_task(
        receipt(
            items=[position(price=0.10, quantity=3, amount=0.30)],
            payments=[{"type": "cash", "sum": 0.30}],
        )
    )
    assert isinstance(task, ReceiptTask)
    assert task.total == Decimal("0.30")
    driver = to_driver_json(task)
    assert driver["total"] == 0.3
    assert json.dumps(driver["total"]) == "0.3"


def test_float_sums_that_drift_in_binary_are_exact_here() -> None:
    assert 0.1 + 0.2 != 0.3  # what the model must not inherit
    task = parse_task(
        receipt(
            items=[
                position(price=0.1, quantity=1, amount=0.1),
                position(price=0.2, quantity=1, amount=0.2),
            ],
            payments=[{"type": "electronically", "sum": 0.3}],
            total=0.3,
        )
    )
    assert isinstance(task, ReceiptTask)
    assert task.total == Decimal("0.30")
    assert json.dumps(to_driver_json(task)["total"]) == "0.3"


def test_missing_total_is_computed_from_the_positions() -> None:
    task = parse_task(
        receipt(
            items=[position(), position(price=19.99, quantity=0.5, amount=10.00)],
            payments=[{"type": "cash", "sum": 110}],
        )
    )
    assert isinstance(task, ReceiptTask)
    assert task.total == Decimal("110.00")
    assert to_driver_json(task)["total"] == 110.0


def test_amount_within_a_kopeck_of_price_times_quantity_is_accepted() -> None:
    # 33.33 × 0.333 = 11.09889, printed by the shop as 11.10
    task = parse_task(
        receipt(
            items=[position(price=33.33, quantity=0.333, amount=11.10)],
            payments=[{"type": "cash", "sum": 11.10}],
        )
    )
    assert isinstance(task, ReceiptTask)
    assert task.total == Decimal("11.10")


def test_discount_is_subtracted_from_the_amount() -> None:
    item = position(price=100, quantity=2, infoDiscountAmount=10.50, amount=189.50)
    task = parse_task(receipt(items=[item], payments=[{"type": "cash", "sum": 189.50}]))
    assert isinstance(task, ReceiptTask)
    assert task.total == Decimal("189.50")


def test_cash_beyond_the_total_gives_change() -> None:
    task = parse_task(receipt(payments=[{"type": "cash", "sum": 500}]))
    assert isinstance(task, ReceiptTask)
    assert task.change == Decimal("400.00")
    assert "change" not in to_driver_json(task)


def test_mixed_payment_gives_change_from_the_cash_part() -> None:
    task = parse_task(
        receipt(payments=[{"type": "electronically", "sum": 60}, {"type": "cash", "sum": 50}])
    )
    assert isinstance(task, ReceiptTask)
    assert task.change == Decimal("10.00")


def test_exact_payment_gives_no_change() -> None:
    task = parse_task(
        receipt(payments=[{"type": "prepaid", "sum": 40}, {"type": "cash", "sum": 60}])
    )
    assert isinstance(task, ReceiptTask)
    assert task.change == Decimal("0.00")


def test_correction_receipt_parses_with_its_base_document() -> None:
    task = parse_task(correction(correctionType="instruction", correctionBaseNumber="ЕД-7-20/1050"))
    assert isinstance(task, CorrectionTask)
    assert task.correctionType == "instruction"
    assert task.correctionBaseDate == "2025.12.01"
    driver = to_driver_json(task)
    assert driver["correctionBaseNumber"] == "ЕД-7-20/1050"
    assert driver["type"] == "sellCorrection"


def test_open_shift_keeps_the_operator() -> None:
    task = parse_task(
        {"type": "openShift", "operator": {"name": "Петрова А.", "vatin": "7707083893"}}
    )
    assert isinstance(task, ShiftTask)
    assert to_driver_json(task) == {
        "type": "openShift",
        "operator": {"name": "Петрова А.", "vatin": "7707083893"},
    }


def test_cash_in_sum_becomes_a_number_for_the_driver() -> None:
    task = parse_task({"type": "cashIn", "cashSum": 100.50})
    assert isinstance(task, CashTask)
    assert task.cashSum == Decimal("100.50")
    assert to_driver_json(task) == {"type": "cashIn", "cashSum": 100.5}


def test_last_fiscal_params_without_for_receipt() -> None:
    task = parse_task({"type": "getLastFiscalParams"})
    assert isinstance(task, LastFiscalParamsTask)
    assert task.forReceipt is None
    assert to_driver_json(task) == {"type": "getLastFiscalParams"}


def test_json_decoded_with_decimal_numbers_is_accepted_as_is() -> None:
    data = json.loads(json.dumps(receipt()), parse_float=Decimal)
    task = parse_task(data)
    assert isinstance(task, ReceiptTask)
    assert task.total == Decimal("100.00")


@pytest.mark.parametrize("unit", ["piece", "kilogram", 0, 11, 255, "шт.", "упаковка 10 шт"])
def test_measurement_unit_accepts_ffd12_names_codes_and_free_text(unit: str | int) -> None:
    task = parse_task(receipt(items=[position(measurementUnit=unit)]))
    assert isinstance(task, ReceiptTask)
    assert to_driver_json(task)["items"][0]["measurementUnit"] == unit


@pytest.mark.parametrize(
    "tax_type",
    [
        "none",
        "vat0",
        "vat5",
        "vat7",
        "vat10",
        "vat20",
        "vat22",
        "vat105",
        "vat107",
        "vat110",
        "vat120",
        "vat122",
    ],
)
def test_every_current_tax_type_is_accepted(tax_type: str) -> None:
    task = parse_task(receipt(items=[position(tax={"type": tax_type, "sum": 16.67})]))
    assert isinstance(task, ReceiptTask)
    assert task.positions[0].tax.type == tax_type


def test_non_fiscal_items_and_buyer_data_pass_through() -> None:
    data = receipt(
        electronically=True,
        clientInfo={
            "emailOrPhone": "buyer@example.ru",
            "name": "ООО Ромашка",
            "vatin": "7736207543",
            "birthDate": "01.02.1990",
        },
        items=[
            position(paymentMethod="fullPrepayment", paymentObject="commodityWithMarking"),
            {"type": "barcode", "barcode": "https://example.ru/o/1", "barcodeType": "QR"},
            {"type": "text", "text": "", "wrap": "words"},
        ],
        companyInfo={"email": "shop@example.ru"},
        postItems=[{"type": "text", "text": "Спасибо!"}],
    )
    task = parse_task(data)
    assert isinstance(task, ReceiptTask)
    assert isinstance(task.items[1], BarcodeItem)
    assert to_driver_json(task) == {**data, "total": 100.0}


def test_limits_are_inclusive() -> None:
    items = [position(name="Я" * 128, price=1, quantity=1, amount=1) for _ in range(100)]
    data = receipt(
        items=items,
        payments=[{"type": "cash", "sum": 100}],
        operator={"name": "О" * 64},
        paymentsAddress="а" * 256,
        clientInfo={"emailOrPhone": "a" * 53 + "@example.ru"},  # 64 characters
    )
    task = parse_task(data)
    assert isinstance(task, ReceiptTask)
    assert len(task.positions) == 100


def _all_numbers(model: BaseModel) -> list[Any]:
    """Every float or Decimal anywhere in a parsed model, with the models' own values."""
    found: list[Any] = []
    for name in type(model).model_fields:
        value = getattr(model, name)
        values = value if isinstance(value, list) else [value]
        for inner in values:
            if isinstance(inner, BaseModel):
                found += _all_numbers(inner)
            elif isinstance(inner, float | Decimal):
                found.append(inner)
    return found


def test_money_inside_the_model_is_never_float() -> None:
    data = receipt(
        items=[position(infoDiscountAmount=0.0, tax={"type": "vat20", "sum": 16.67})],
        payments=[{"type": "cash", "sum": 100.0}],
        taxes=[{"type": "vat20", "sum": 16.67}],
        total=100.0,
    )
    task = parse_task(data)
    assert isinstance(task, ReceiptTask)
    numbers = _all_numbers(task)
    # price, quantity, amount, discount, tax.sum, payment sum, taxes[0].sum, total
    assert len(numbers) == 8
    assert all(isinstance(n, Decimal) for n in numbers)
    assert isinstance(task.change, Decimal)
    cash = parse_task({"type": "cashOut", "cashSum": 12.5})
    assert isinstance(cash, CashTask) and isinstance(cash.cashSum, Decimal)


@pytest.mark.parametrize("task_type", sorted(MINIMAL_TASKS))
def test_driver_json_parses_back_to_the_same_task(task_type: str) -> None:
    task: Task = parse_task(MINIMAL_TASKS[task_type])
    assert parse_task(to_driver_json(task)) == task
