"""Receipts as real clients build them, each accepted or refused exactly as the driver does.

Every row names its source. Sources (public; read, not copied):

* ``V`` AlexanderYekat/atolexamplesjson ``myscripts_validators.js`` (the DTO10 driver's
  validators of positions, items, agent/supplier data, marking, product codes);
* ``B`` the same repository, ``myscripts_base_receipt.js`` (top-level fields, payments,
  totals, the document size estimate); ``C`` ``myscripts_base_correction.js``;
  ``U`` ``myscripts_utils.js`` (the value tables: tax rates, payment types, aliases);
* ``BX2``/``BX3`` avshatalov48/bitrix-core-business ``modules/sale/lib/cashbox/
  cashboxbitrixv2.php`` / ``cashboxbitrixv3.php`` (what a 1C-Bitrix shop sends);
* ``N`` shared/reference/atol-notes.md (§1.3–1.5, collected from many clients);
* ``G`` the DTO10 programmer's guide as the issue quotes it (POSITION_SUM may differ from
  price × quantity); ``I`` issue 11 itself where no stored source states the rule (the row
  says so).

A row is ``(id, source, task, expected)``: ``expected`` is ``None`` (accepted) or a dict of
driver-JSON paths and their normalised values (accepted, normalised), or a string the
refusal must contain. Every accepted receipt also goes to the simulator (a registered
register), which prints it or refuses it with its own code where the driver leaves that to it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from kassa_appliance.fiscal.receipt import TaskValidationError, parse_task, to_driver_json
from kassa_appliance.registers.base import RECEIPT_TASK_TYPES, RegisterError
from kassa_appliance.registers.simulator import SimulatorRegister

Task = dict[str, Any]


def pos(**fields: Any) -> Task:
    item: Task = {
        "type": "position",
        "name": "Товар",
        "price": 100.0,
        "quantity": 1,
        "amount": 100.0,
        "tax": {"type": "vat20"},
    }
    item.update(fields)
    return item


def sell(*items: Task, **fields: Any) -> Task:
    task: Task = {
        "type": "sell",
        "items": list(items) or [pos()],
        "payments": [{"type": "cash", "sum": 100.0}],
    }
    task.update(fields)
    return task


def bitrix_v2() -> Task:
    """The shape of CashboxBitrixV2::buildCheckQuery: envelope keys, base price, discounted
    sum as amount, contact possibly empty."""
    return {
        "type": "sell",
        "timestamp": "01.02.2026 12:00:00",
        "external_id": "check|123",
        "taxationType": "osn",
        "zn": "00106700000000",
        "clientInfo": {"emailOrPhone": ""},
        "payments": [{"type": "electronically", "sum": 1800.0}],
        "items": [
            {
                "name": "Футболка",
                "type": "position",
                "price": 1000.0,
                "quantity": 2,
                "amount": 1800.0,
                "paymentMethod": "fullPayment",
                "paymentObject": "commodity",
                "tax": {"type": "vat20"},
            }
        ],
        "total": 1800.0,
    }


def bitrix_v3_marked(**imc: Any) -> Task:
    task = bitrix_v2()
    item = task["items"][0]
    item["measurementUnit"] = 0
    item["paymentObject"] = "commodityWithMarking"
    item["imcParams"] = {
        "imcType": "auto",
        "imc": "MDEwNDYwNzQyODY3OTA5MDIxNmVKSWpvV0g1NERkVmI=",
        "itemEstimatedStatus": "itemPieceSold",
        "imcModeProcessing": 0,
        **imc,
    }
    task["validateMarkingCodes"] = True
    return task


def many_positions(count: int, name: str = "Позиция") -> Task:
    items = [pos(name=f"{name} {i}", price=1.0, amount=1.0) for i in range(count)]
    return sell(*items, payments=[{"type": "cash", "sum": float(count)}])


def edit(task: Task, change: Callable[[Task], None]) -> Task:
    changed = copy.deepcopy(task)
    change(changed)
    return changed


def item0(**fields: Any) -> Callable[[Task], None]:
    return lambda task: task["items"][0].update(fields)


ACCEPTED = None
ROWS: list[tuple[str, str, object, object]] = [
    # --- amounts, totals, rounding (G, B) ---------------------------------------------------
    (
        "amount with a discount folded in",
        "G",
        sell(pos(price=100, quantity=2, amount=180), payments=[{"type": "cash", "sum": 180}]),
        None,
    ),
    (
        "amount with a markup",
        "G",
        sell(pos(price=100, amount=110), payments=[{"type": "cash", "sum": 110}]),
        None,
    ),
    (
        "infoDiscountAmount is information only",
        "G",
        sell(pos(amount=100, infoDiscountAmount=15)),
        None,
    ),
    ("Bitrix base price and discounted sum", "BX2", bitrix_v2(), {"items.0.amount": 1800.0}),
    (
        "total a few kopecks below the sum",
        "B",
        sell(pos(amount=100.37), total=100.0, payments=[{"type": "cash", "sum": 100}]),
        {"total": 100.0},
    ),
    (
        "total 0.99 below the sum",
        "I: tolerance from the DTO10 guide as remembered; no stored source",
        sell(pos(amount=100.99), total=100.0),
        None,
    ),
    (
        "total a rouble below the sum",
        "I: tolerance from the DTO10 guide as remembered",
        sell(pos(amount=101.0), total=100.0),
        "below the sum of the position amounts",
    ),
    (
        "total above the sum",
        "B",
        sell(total=100.5, payments=[{"type": "cash", "sum": 101}]),
        "is above the sum",
    ),
    ("total left out: the sum of the amounts", "B", sell(), {"total": 100.0}),
    (
        "JavaScript float noise in money",
        "B: toFixed(2)",
        sell(
            pos(price=436.79999999999995, amount=436.79999999999995),
            payments=[{"type": "cash", "sum": 436.8}],
        ),
        {"items.0.price": 436.8, "total": 436.8},
    ),
    (
        "0.1 + 0.2 as a price",
        "B: toFixed(2)",
        sell(
            pos(price=0.30000000000000004, quantity=1, amount=0.3),
            payments=[{"type": "cash", "sum": 0.3}],
        ),
        {"items.0.price": 0.3},
    ),
    (
        "three decimals rounded half up",
        "B: toFixed(2)",
        sell(pos(amount=99.995), payments=[{"type": "cash", "sum": 100}]),
        {"items.0.amount": 100.0},
    ),
    (
        "money as a string",
        "V: mustNumber",
        sell(pos(price="100.00")),
        "is a string; expected a JSON number",
    ),
    (
        "quantity as a string",
        "V: mustNumber",
        sell(pos(quantity="1")),
        "items[0].quantity: '1' is a string",
    ),
    (
        "quantity with six decimals",
        "B: getFloatNumSize /10^6",
        sell(
            pos(quantity=0.123456, price=1000, amount=123.46),
            payments=[{"type": "cash", "sum": 123.46}],
        ),
        {"items.0.quantity": 0.123456},
    ),
    (
        "quantity noise beyond six decimals",
        "B",
        sell(
            pos(quantity=0.30000000000000004, price=10, amount=3),
            payments=[{"type": "cash", "sum": 3}],
        ),
        {"items.0.quantity": 0.3},
    ),
    (
        "quantity zero",
        "I: the register refuses a zero quantity",
        sell(pos(quantity=0)),
        "is not positive",
    ),
    ("negative price", "I: the register refuses negative sums", sell(pos(price=-1)), "is negative"),
    (
        "underpaid",
        "B: NOT_FULLY_PAID",
        sell(payments=[{"type": "cash", "sum": 99.99}]),
        "paid is less than the total",
    ),
    (
        "underpaid by float noise only",
        "B: toFixed(2) on both sides",
        sell(pos(amount=0.3), payments=[{"type": "cash", "sum": 0.30000000000000004}]),
        None,
    ),
    (
        "card above the total is the register's call",
        "B: the script does not check it",
        sell(payments=[{"type": "electronically", "sum": 150}]),
        None,
    ),
    (
        "split payment card and cash",
        "N",
        sell(payments=[{"type": "electronically", "sum": 60}, {"type": "cash", "sum": 40}]),
        None,
    ),
    # --- size of the document instead of a position count (B) --------------------------------
    ("150 positions", "B: getTaskSize", many_positions(150), None),
    ("400 short positions", "B: getTaskSize", many_positions(400), None),
    (
        "800 positions are too large",
        "B: getMaxSize 32768",
        many_positions(800),
        "split it into several receipts",
    ),
    (
        "300 positions with long names are too large",
        "B",
        many_positions(300, "Очень длинное наименование товара " * 3),
        "driver takes at most 32,768 bytes",
    ),
    (
        "250 text lines are not counted",
        "B: text items have no size",
        sell(pos(), *[{"type": "text", "text": "x"} for _ in range(250)]),
        None,
    ),
    # --- enumerations in every form (U, V) ---------------------------------------------------
    (
        "paymentObject pay alias",
        "U: pay = 12",
        sell(pos(paymentObject="pay")),
        {"items.0.paymentObject": "composite"},
    ),
    (
        "paymentObject code as a string",
        "U: parseInt",
        sell(pos(paymentObject="4")),
        {"items.0.paymentObject": "service"},
    ),
    (
        "paymentObject code as a number",
        "I: normalised to the name every driver takes",
        sell(pos(paymentObject=33)),
        {"items.0.paymentObject": "commodityWithMarking"},
    ),
    (
        "paymentObject with a trailing space (Bitrix v3)",
        "BX3 / V: not a key, parseInt NaN",
        sell(pos(paymentObject="exciseWithoutMarking ")),
        "has spaces around the name",
    ),
    ("paymentObject unknown code", "U", sell(pos(paymentObject="28")), "is not a known code"),
    (
        "paymentMethod code as a number",
        "I: normalised to the name",
        sell(pos(paymentMethod=4)),
        {"items.0.paymentMethod": "fullPayment"},
    ),
    (
        "paymentMethod code as a string",
        "V: parseInt",
        sell(pos(paymentMethod="1")),
        {"items.0.paymentMethod": "fullPrepayment"},
    ),
    (
        "paymentMethod empty string ignored",
        "V: mustStringOrMissingValues",
        sell(pos(paymentMethod="")),
        {"items.0.paymentMethod": None},
    ),
    ("paymentMethod unknown", "V", sell(pos(paymentMethod="full")), "'full' is not allowed"),
    (
        "payment type code 1",
        "B: parseInt",
        sell(payments=[{"type": 1, "sum": 100}]),
        {"payments.0.type": "electronically"},
    ),
    (
        'payment type code "0"',
        "B: parseInt",
        sell(payments=[{"type": "0", "sum": 100}]),
        {"payments.0.type": "cash"},
    ),
    (
        "payment type custom 7",
        "N: custom types 5–9",
        sell(payments=[{"type": "7", "sum": 100}]),
        {"payments.0.type": "7"},
    ),
    (
        "payment type 10 does not exist",
        "N: types 0–9",
        sell(payments=[{"type": 10, "sum": 100}]),
        "is not a known code",
    ),
    (
        "payment type card",
        "B/U",
        sell(payments=[{"type": "card", "sum": 100}]),
        "'card' is not allowed",
    ),
    (
        'tax.type as the rate "10"',
        'U: TAX_TYPES has "10"',
        sell(pos(tax={"type": "10"})),
        {"items.0.tax.type": "vat10"},
    ),
    (
        "tax.type as the rate 120",
        "I: normalised to the name",
        sell(pos(tax={"type": 120})),
        {"items.0.tax.type": "vat120"},
    ),
    ("tax.type vat22 of 2026", "N §5.5", sell(pos(tax={"type": "vat22"})), None),
    (
        "tax.type vat18 obsolete",
        "N §5.5 / U: the register refuses 18 % since 2019",
        sell(pos(tax={"type": "vat18"})),
        "is obsolete",
    ),
    (
        "tax.type unknown",
        "V: mustStringValues",
        sell(pos(tax={"type": "vat21"})),
        "'vat21' is not allowed",
    ),
    (
        "measurementUnit code (Bitrix v3)",
        "BX3 / V: number|string",
        sell(pos(measurementUnit=0)),
        {"items.0.measurementUnit": 0},
    ),
    ("measurementUnit FFD 1.05 text", "V / N", sell(pos(measurementUnit="шт.")), None),
    (
        "taxationType empty ignored",
        "B: mustStringOrMissingValues",
        sell(taxationType=""),
        {"taxationType": None},
    ),
    ("taxationType envd abolished", "N / U", sell(taxationType="envd"), "is obsolete"),
    (
        "alignment empty ignored",
        "V",
        sell(pos(), {"type": "text", "text": "x", "alignment": ""}),
        {"items.1.alignment": None},
    ),
    (
        "barcodeType CODE39_EXTENDED",
        "V: validateBarcodeItem",
        sell(pos(), {"type": "barcode", "barcode": "X", "barcodeType": "CODE39_EXTENDED"}),
        None,
    ),
    (
        "barcodeType AZTEC unknown to the driver",
        "V: validateBarcodeItem",
        sell(pos(), {"type": "barcode", "barcode": "X", "barcodeType": "AZTEC"}),
        "'AZTEC' is not allowed",
    ),
    # --- empty strings the driver ignores (B: IGNORE_IF_EMPTY) --------------------------------
    (
        "emailOrPhone empty (Bitrix without contact)",
        "BX2 / B",
        bitrix_v2(),
        {"clientInfo.emailOrPhone": None},
    ),
    (
        "operator.vatin empty",
        "B: 1203 IGNORE_IF_EMPTY",
        sell(operator={"name": "Иванов", "vatin": ""}),
        {"operator.vatin": None},
    ),
    (
        "paymentsAddress empty",
        "B: 1009 IGNORE_IF_EMPTY",
        sell(paymentsAddress=""),
        {"paymentsAddress": None},
    ),
    (
        "operator.name empty skips the cashier",
        "B: if (task.operator.name)",
        sell(operator={"name": ""}),
        None,
    ),
    (
        "e-receipt needs a contact",
        "I: the register needs tag 1008 to send it",
        sell(electronically=True, clientInfo={"emailOrPhone": ""}),
        "required when electronically is true",
    ),
    # --- phones --------------------------------------------------------------------------------
    ("phone of Russia", "N §1.3", sell(clientInfo={"emailOrPhone": "+79161234567"}), None),
    (
        "phone of Kazakhstan",
        "I: FFD format + and digits, any country",
        sell(clientInfo={"emailOrPhone": "+77011234567"}),
        None,
    ),
    ("phone of Germany", "I", sell(clientInfo={"emailOrPhone": "+4915123456789"}), None),
    (
        "phone 8916…",
        "I: a hint for the common mistake",
        sell(clientInfo={"emailOrPhone": "89161234567"}),
        "write +79161234567",
    ),
    (
        "phone with spaces and dashes",
        "I",
        sell(clientInfo={"emailOrPhone": "+7 916 123-45-67"}),
        "write +79161234567",
    ),
    (
        "phone without the country code",
        "I",
        sell(clientInfo={"emailOrPhone": "9161234567"}),
        "write +79161234567",
    ),
    ("e-mail", "N", sell(clientInfo={"emailOrPhone": "buyer@example.ru"}), None),
    # --- unknown keys --------------------------------------------------------------------------
    (
        "Bitrix envelope keys ignored",
        "BX2: timestamp, external_id, zn",
        bitrix_v2(),
        {"timestamp": None, "external_id": None, "zn": None},
    ),
    ("typo at the top level", "I: a likely typo is refused", sell(totl=100), "did you mean total?"),
    ("typo in a position", "I", sell(pos(quanity=2)), "did you mean quantity?"),
    (
        "unknown nested key",
        "I: nested keys stay strict",
        sell(operator={"name": "Иванов", "inn": "7707083893"}),
        "operator.inn: unknown field",
    ),
    (
        "useVAT18 is not supported",
        "B: useVAT18",
        sell(useVAT18=True),
        "Atol field useVAT18 (no FFD tag",
    ),
    (
        "ucUserParam3 is not supported",
        "V: ucUserParam3",
        sell(pos(ucUserParam3=1)),
        "is not supported by the appliance",
    ),
    (
        "pictureFromMemory is not supported",
        "V: validatePictureFromMemoryItem",
        sell(pos(), {"type": "pictureFromMemory", "pictureNumber": 1}),
        "is not supported by the appliance",
    ),
    # --- fields real clients use (V, B) --------------------------------------------------------
    (
        "operationInfo 1270",
        "B: operationInfo",
        sell(operationInfo={"id": 1, "data": "Заказ 12", "dateTime": "2026.02.01 12:00:00"}),
        None,
    ),
    (
        "operationInfo dateTime malformed",
        "B: reggieDateTime",
        sell(operationInfo={"dateTime": "01.02.2026"}),
        "is not a date and time yyyy.mm.dd HH:MM:SS",
    ),
    (
        "operationInfo id as a string",
        "B: mustNumberOrMissing",
        sell(operationInfo={"id": "1"}),
        "operationInfo.id: expected a number",
    ),
    (
        "receipt industryInfo 1261",
        "B: industryInfo",
        sell(
            industryInfo=[
                {
                    "fois": "030",
                    "date": "2026.01.20",
                    "number": "477",
                    "industryAttribute": "tm=mdlp",
                }
            ]
        ),
        None,
    ),
    (
        "industryInfo date malformed",
        "B: reggieDate",
        sell(industryInfo=[{"date": "20.01.2026"}]),
        "is not a date yyyy.mm.dd",
    ),
    (
        "productCodes by kind 1163",
        "V: productCodes",
        sell(pos(productCodes={"ean13": "4601234567893"})),
        None,
    ),
    ("productCodes as codes[]", "V", sell(pos(productCodes={"codes": ["4601234567893"]})), None),
    (
        "productCodes both forms",
        "V: collision of array and tags",
        sell(pos(productCodes={"ean13": "1", "codes": ["1"]})),
        "both codes[] and named codes",
    ),
    (
        "productCodes empty",
        "V: collision of array and tags",
        sell(pos(productCodes={"ean8": None})),
        "neither codes[] and named codes",
    ),
    (
        "markingCode FFD 1.05",
        "V: markingCode",
        sell(pos(markingCode={"mark": "MDEwNDYwNzQy", "type": "other"})),
        None,
    ),
    (
        "markingCode unknown type",
        "V",
        sell(pos(markingCode={"mark": "x", "type": "egais40"})),
        "'egais40' is not allowed",
    ),
    (
        "nomenclatureCode as an object",
        "V: nomenclatureCode",
        sell(pos(nomenclatureCode={"type": "shoes", "gtin": "04601234567893", "serial": "ABC"})),
        None,
    ),
    (
        "nomenclatureCode object without serial",
        "V",
        sell(pos(nomenclatureCode={"type": "shoes"})),
        "is not a valid code object",
    ),
    (
        "customParameters",
        "B/V: customParameters",
        sell(
            pos(customParameters=[{"id": 3, "value": "x"}]),
            customParameters=[{"id": 1, "value": "y"}],
        ),
        None,
    ),
    (
        "customParameters id as a string",
        "V: mustNumber",
        sell(customParameters=[{"id": "1", "value": "y"}]),
        "customParameters[0].id: expected a number",
    ),
    (
        "payments printItems",
        "B: printItems",
        sell(
            payments=[
                {"type": "cash", "sum": 100, "printItems": [{"type": "text", "text": "Сдача"}]}
            ]
        ),
        None,
    ),
    (
        "userAttribute item 1084",
        "B/V: userAttribute",
        sell(pos(), {"type": "userAttribute", "name": "Клиент", "value": "12", "print": True}),
        None,
    ),
    (
        "additionalAttribute item 1192",
        "V: validateAdditionalAttributeItem",
        sell(pos(), {"type": "additionalAttribute", "value": "A-1"}),
        None,
    ),
    (
        "additionalAttribute without value",
        "V: mustString(value)",
        sell(pos(), {"type": "additionalAttribute"}),
        "items[1].value: required field is missing",
    ),
    ("companyInfo email", "B", sell(companyInfo={"email": "shop@example.ru"}), None),
    # --- marking (BX3, V) ----------------------------------------------------------------------
    ("Bitrix v3 marked position", "BX3", bitrix_v3_marked(), None),
    (
        "imcParams without imc",
        "V: mustString(imcParams.imc)",
        edit(bitrix_v3_marked(), lambda t: t["items"][0]["imcParams"].pop("imc")),
        "items[0].imcParams.imc: required field is missing",
    ),
    (
        "unknown itemEstimatedStatus",
        "V: mustDictValueOrMissing",
        bitrix_v3_marked(itemEstimatedStatus="itemSold"),
        "'itemSold' is not allowed",
    ),
    (
        "itemEstimatedStatus as a number",
        "V: numbers pass mustDictValueOrMissing",
        bitrix_v3_marked(itemEstimatedStatus=1),
        None,
    ),
    ("unknown imcType", "V", bitrix_v3_marked(imcType="imcLong"), "'imcLong' is not allowed"),
    (
        "itemInfoCheckResult incomplete",
        "V: mustBoolean each flag",
        bitrix_v3_marked(itemInfoCheckResult={"imcCheckFlag": True}),
        "itemInfoCheckResult.imcCheckResult: required field is missing",
    ),
    # --- agents and suppliers (V) ---------------------------------------------------------------
    (
        "agent data",
        "V: validateAgentInfo",
        sell(
            pos(
                agentInfo={
                    "agents": ["commissionAgent"],
                    "payingAgent": {"operation": "Комиссия", "phones": ["+79161234567"]},
                },
                supplierInfo={
                    "name": "ООО Поставщик",
                    "vatin": "7707083893",
                    "phones": ["+79160000000"],
                },
            )
        ),
        None,
    ),
    (
        "agents outside the agent types",
        "V: validateAgentInfo",
        sell(pos(agentInfo={"agents": ["agent"]})),
        "agentInfo.agents[0]: 'agent' is not allowed",
    ),
    (
        "supplierInfo.phones not a list",
        "V: mustArrayOrMissing",
        sell(pos(supplierInfo={"name": "ООО", "phones": "+79160000000"})),
        "supplierInfo.phones: expected a list, got a string",
    ),
    (
        "agent phone not a string",
        "V: mustString(phones[i])",
        sell(pos(agentInfo={"receivePaymentsOperator": {"phones": [79160000000]}})),
        "phones[0]: expected a string, got a number",
    ),
    # --- corrections (C) ------------------------------------------------------------------------
    (
        "FFD 1.2 correction with items",
        "C: validateNewCorrection",
        sell(
            type="sellCorrection",
            correctionType="self",
            correctionBaseDate="2026.01.15",
            correctionBaseNumber="",
        ),
        None,
    ),
    (
        "FFD 1.05 correction without items",
        "C: validateOldCorrection",
        {
            "type": "sellCorrection",
            "correctionType": "instruction",
            "correctionBaseName": "Предписание",
            "correctionBaseDate": "2026.01.15",
            "correctionBaseNumber": "12",
            "payments": [{"type": "cash", "sum": 500}],
            "taxes": [{"type": "vat20", "sum": 83.33}],
        },
        {"total": 500.0},
    ),
    (
        "correction date malformed",
        "C: reggieDate",
        sell(type="buyCorrection", correctionType="self", correctionBaseDate="15.01.2026"),
        "is not a date; expected yyyy.mm.dd",
    ),
    # --- structural types (V, B) -----------------------------------------------------------------
    (
        "electronically as a string",
        "B: mustBooleanOrMissing",
        sell(electronically="true"),
        "electronically: expected true or false, got a string",
    ),
    (
        "department as a string",
        "V: mustNumberOrMissing",
        sell(pos(department="1")),
        "department: expected an integer, got a string",
    ),
    ("items not a list", "B: mustArray", sell(items={}), "items: expected a list, got an object"),
    (
        "payments missing",
        "B: mustArray(payments)",
        edit(sell(), lambda t: t.pop("payments")),
        "payments: required field is missing",
    ),
    (
        "name missing",
        "V: mustString(name)",
        edit(sell(), lambda t: t["items"][0].pop("name")),
        "items[0].name: required field is missing",
    ),
    (
        "the atol-notes sample",
        "N §1.4",
        {
            "type": "sell",
            "taxationType": "usnIncome",
            "electronically": False,
            "paymentsAddress": "https://shop.example.ru",
            "operator": {"name": "Иванов И.И.", "vatin": "123654789507"},
            "clientInfo": {"emailOrPhone": "+79161234567"},
            "items": [
                {
                    "type": "position",
                    "name": "Консультация",
                    "price": 1500.0,
                    "quantity": 1,
                    "amount": 1500.0,
                    "measurementUnit": "piece",
                    "paymentMethod": "fullPayment",
                    "paymentObject": "service",
                    "tax": {"type": "none"},
                },
                {"type": "text", "text": "Заказ Bitrix24 #4512", "alignment": "center"},
            ],
            "payments": [{"type": "electronically", "sum": 1500.0}],
            "total": 1500.0,
        },
        None,
    ),
]


def _at(driver: Any, path: str) -> Any:
    value = driver
    for part in path.split("."):
        if isinstance(value, list):
            value = value[int(part)]
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value


def test_the_table_has_at_least_eighty_rows_with_sources() -> None:
    assert len(ROWS) >= 80
    assert len({row[0] for row in ROWS}) == len(ROWS)
    assert all(row[1] for row in ROWS)


@pytest.mark.parametrize(("task", "expected"), [r[2:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_each_receipt_is_taken_or_refused_as_the_driver_does(task: Any, expected: Any) -> None:
    if isinstance(expected, str):
        with pytest.raises(TaskValidationError) as caught:
            parse_task(task)
        assert any(expected in problem for problem in caught.value.problems), caught.value.problems
        return
    driver = to_driver_json(parse_task(task))
    for path, value in (expected or {}).items():
        assert _at(driver, path) == value, (path, driver)
    assert to_driver_json(parse_task(driver)) == driver  # the normalised form is stable


ACCEPTED = [row for row in ROWS if not isinstance(row[3], str)]
REGISTER_REFUSES = {
    "card above the total is the register's call": 52,
    # The simulator is registered on FFD 1.2, where a correction carries its items; the
    # 1.05 shape is for registers still on FFD 1.05.
    "FFD 1.05 correction without items": 501,
}
"""Accepted by the validator, refused by the register itself with its own code."""


@pytest.fixture(scope="module")
def registered_simulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorRegister]:
    register = SimulatorRegister(tmp_path_factory.mktemp("compat-simulator"))
    register.open()
    try:
        register.process({"type": "openShift"})
        yield register
    finally:
        register.close()


@pytest.mark.parametrize("task", [r[2] for r in ACCEPTED], ids=[r[0] for r in ACCEPTED])
def test_each_accepted_receipt_is_fiscalised_by_the_simulator(
    registered_simulator: SimulatorRegister, task: Any
) -> None:
    """The simulator is a registered register: what the validator takes, it prints (the
    rows' receipts are far from any shift or document limit)."""
    driver = to_driver_json(parse_task(task))
    if driver["type"] not in RECEIPT_TASK_TYPES:
        pytest.skip(f"{driver['type']} is not a receipt")
    if _needs_marking_check(driver):
        pytest.skip(
            "a marked position needs the marking-code check flow first (test_marking_codes)"
        )
    row_id = next(row[0] for row in ACCEPTED if row[2] is task)
    if row_id in REGISTER_REFUSES:
        with pytest.raises(RegisterError) as refused:
            registered_simulator.process(driver)
        assert refused.value.code == REGISTER_REFUSES[row_id]
        return
    result = registered_simulator.process(driver)
    assert int(result["fiscalParams"]["fiscalDocumentNumber"]) > 0


def _needs_marking_check(driver: dict[str, Any]) -> bool:
    return any(
        isinstance(item, dict) and ("imcParams" in item or "markingCode" in item)
        for item in driver.get("items", [])
    )
