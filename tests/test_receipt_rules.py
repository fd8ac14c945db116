"""Every validation rule: a bad task and the exact message the operator gets."""

from __future__ import annotations

from typing import Any

import pytest

from kassa_appliance.fiscal.receipt import (
    TASK_TYPES,
    Position,
    ReceiptTask,
    TaskValidationError,
    parse_task,
)
from kassa_appliance.fiscal.receipt_rules import inn_checksum_ok
from test_receipt_samples import correction, position, receipt, sample_sell

SUPPORTED = ", ".join(TASK_TYPES)
TAXES = "none, vat0, vat5, vat7, vat10, vat20, vat22, vat105, vat107, vat110, vat120, vat122"
POSITION_FIELDS = ", ".join(Position.model_fields)
RECEIPT_FIELDS = ", ".join(ReceiptTask.model_fields)
UNITS = (
    "0, 10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 70, 71, 72, 73, 80, 81, 82, 83, 255"
)
PAYMENT_OBJECTS = (
    "commodity, excise, job, service, gamblingBet, gamblingPrize, lottery, lotteryPrize,"
    " intellectualActivity, payment, agentCommission, composite, another, proprietaryLaw,"
    " nonOperatingIncome, insuranceContributions, otherContributions, merchantTax, resortFee,"
    " deposit, consumption, soleProprietorCPIContributions, cpiContributions,"
    " soleProprietorCMIContributions, cmiContributions, csiContributions, casinoPayment,"
    " fundsIssuance, exciseWithoutMarking, exciseWithMarking, commodityWithoutMarking,"
    " commodityWithMarking"
)


def not_a_contact(value: str) -> str:
    return (
        f"clientInfo.emailOrPhone: {value!r} is neither an e-mail address nor a phone number;"
        " expected name@domain or +7 followed by 10 digits"
    )


INN_EXPECTED = "expected 10 digits (organisation) or 12 digits (individual)"


def problems_of(data: object) -> list[str]:
    with pytest.raises(TaskValidationError) as caught:
        parse_task(data)
    return caught.value.problems


def with_position(**fields: Any) -> dict[str, Any]:
    return receipt(items=[position(**fields)])


CASES: list[tuple[str, object, str]] = [
    # --- the task itself
    ("not an object", [], "task: expected a JSON object, got a list"),
    ("no type", {}, f"type: required field is missing; expected one of {SUPPORTED}"),
    (
        "unknown type",
        {"type": "print"},
        f"type: 'print' is not a supported task type; expected one of {SUPPORTED}",
    ),
    ("type not a string", {"type": 1}, f"type: expected one of {SUPPORTED}, got a number"),
    (
        "unknown receipt field",
        receipt(totl=100),
        "totl: unknown field; did you mean total? (other unknown top-level keys are ignored, as "
        "the driver ignores them)",
    ),
    (
        "unknown position field",
        receipt(items=[{**position(), "prise": 50}]),
        "items[0].prise: unknown field; did you mean price? expected one of type, name, price, "
        "quantity, amount, tax, infoDiscountAmount, department, piece, measurementUnit, "
        "paymentMethod, paymentObject, nomenclatureCode, markingCode, imcParams, productCodes, "
        "industryInfo, agentInfo, supplierInfo, additionalAttribute, additionalAttributePrint, "
        "exciseSum, countryCode, customsDeclaration, customParameters",
    ),
    (
        "unknown operator field",
        receipt(operator={"name": "Иванов", "inn": "7707083893"}),
        "operator.inn: unknown field; expected one of name, vatin",
    ),
    # --- items
    (
        "items missing",
        {"type": "sell", "payments": []},
        "items: required field is missing; expected a list of items",
    ),
    ("items not a list", receipt(items={}), "items: expected a list, got an object"),
    (
        "item not an object",
        receipt(items=[position(), 5]),
        "items[1]: expected an object, got a number",
    ),
    (
        "item without type",
        receipt(items=[position(), {"text": "x"}]),
        "items[1].type: required field is missing; expected one of position, text, barcode, "
        "userAttribute, additionalAttribute",
    ),
    (
        "item of unknown type",
        receipt(items=[position(), {"type": "picture"}]),
        "items[1].type: 'picture' is not allowed; expected one of position, text, barcode, "
        "userAttribute, additionalAttribute",
    ),
    (
        "no position",
        receipt(items=[{"type": "text", "text": "только текст"}]),
        "items: no position; expected at least one item of type position",
    ),
    (
        "position name missing",
        receipt(items=[{**position(), "name": None}]),
        "items[0].name: expected a string, got null",
    ),
    ("position name empty", with_position(name=" "), "items[0].name: is empty; expected some text"),
    (
        "position name too long",
        with_position(name="Я" * 129),
        "items[0].name: is 129 characters long; expected at most 128 characters",
    ),
    (
        "position name a number",
        with_position(name=5),
        "items[0].name: expected a string, got a number",
    ),
    (
        "tax missing",
        receipt(items=[{k: v for k, v in position().items() if k != "tax"}]),
        "items[0].tax: required field is missing",
    ),
    (
        "text item too long",
        receipt(items=[position(), {"type": "text", "text": "т" * 257}]),
        "items[1].text: is 257 characters long; expected at most 256 characters",
    ),
    (
        "text alignment",
        receipt(items=[position(), {"type": "text", "text": "x", "alignment": "middle"}]),
        "items[1].alignment: 'middle' is not allowed; expected one of left, center, right",
    ),
    (
        "barcode type",
        receipt(items=[position(), {"type": "barcode", "barcode": "123", "barcodeType": "EAN"}]),
        "items[1].barcodeType: 'EAN' is not allowed; expected one of EAN8, EAN13, UPCA, UPCE, "
        "CODE39, CODE93, CODE128, CODABAR, ITF, ITF14, GS1_128, QR, PDF417, CODE39_EXTENDED",
    ),
    (
        "department negative",
        with_position(department=-1),
        "items[0].department: -1 is out of range; expected at least 0",
    ),
    (
        "piece not a bool",
        with_position(piece=[1]),
        "items[0].piece: expected true or false, got a list",
    ),
    # --- money and quantity
    (
        "price negative",
        with_position(price=-1),
        "items[0].price: -1.00 is negative; expected 0 or more",
    ),
    (
        "price with comma",
        with_position(price="1,5"),
        "items[0].price: '1,5' is a string; expected a JSON number such as 12.34 (without quotes)",
    ),
    ("price bool", with_position(price=True), "items[0].price: expected a number, got true"),
    ("price null", with_position(price=None), "items[0].price: expected a number, got null"),
    (
        "price NaN",
        with_position(price=float("nan")),
        "task, items[0].price: NaN is not a finite number; expected a finite number",
    ),
    (
        "price too large",
        with_position(price=10_000_000_000),
        "items[0].price: 10000000000.00 is too large; expected at most 9999999999.99",
    ),
    (
        "receipt tax sum missing",
        receipt(taxes=[{"type": "vat20"}]),
        "taxes[0].sum: required field is missing",
    ),
    (
        "quantity zero",
        with_position(quantity=0),
        "items[0].quantity: 0 is not positive; expected a quantity greater than 0",
    ),
    (
        "quantity negative",
        with_position(quantity=-2),
        "items[0].quantity: -2 is not positive; expected a quantity greater than 0",
    ),
    (
        "quantity too large",
        with_position(quantity=10_000_000),
        "items[0].quantity: 10000000.000000 is too large; expected at most 99999.999999",
    ),
    # --- amounts and totals
    (
        "money as a string",
        receipt(items=[position(amount="100.02")]),
        "items[0].amount: '100.02' is a string; expected a JSON number such as 12.34"
        " (without quotes)",
    ),
    (
        "total differs from the items",
        receipt(total=101, payments=[{"type": "cash", "sum": 101}]),
        "total: 101.00 is above the sum of the position amounts 100.00; expected 100.00 or up to "
        "1.00 less (rounding)",
    ),
    # --- payments
    (
        "payments missing",
        {"type": "sell", "items": [position()]},
        "payments: required field is missing",
    ),
    (
        "no payment",
        receipt(payments=[]),
        "payments: 0.00 paid is less than the total 100.00; expected at least 100.00 (the driver "
        "refuses it as Atol error 66, not fully paid)",
    ),
    (
        "underpaid",
        receipt(payments=[{"type": "cash", "sum": "99.99"}]),
        "payments[0].sum: '99.99' is a string; expected a JSON number such as 12.34 (without "
        "quotes)",
    ),
    (
        "payment type",
        receipt(payments=[{"type": "card", "sum": 100}]),
        "payments[0].type: 'card' is not allowed; expected one of cash, electronically, prepaid, "
        "credit, other or its tag-1031 code",
    ),
    # --- enumerations
    (
        "unknown tax type",
        with_position(tax={"type": "vat21"}),
        f"items[0].tax.type: 'vat21' is not allowed; expected one of {TAXES}",
    ),
    (
        "vat18 is obsolete",
        with_position(tax={"type": "vat18"}),
        "items[0].tax.type: 'vat18' is obsolete (VAT 18 % was replaced by 20 % on 2019-01-01);"
        f" expected one of {TAXES}",
    ),
    (
        "vat118 is obsolete",
        with_position(tax={"type": "vat118"}),
        "items[0].tax.type: 'vat118' is obsolete (VAT 18/118 was replaced by 20/120 on"
        f" 2019-01-01); expected one of {TAXES}",
    ),
    (
        "receipt-level vat18",
        receipt(taxes=[{"type": "vat18", "sum": 1}]),
        "taxes[0].type: 'vat18' is obsolete (VAT 18 % was replaced by 20 % on 2019-01-01);"
        f" expected one of {TAXES}",
    ),
    (
        "taxation type",
        receipt(taxationType="usn"),
        "taxationType: 'usn' is not allowed; expected one of osn, usnIncome, usnIncomeOutcome,"
        " esn, patent",
    ),
    (
        "envd is obsolete",
        receipt(taxationType="envd"),
        "taxationType: 'envd' is obsolete (UTII (envd) was abolished on 2021-01-01);"
        " expected one of osn, usnIncome, usnIncomeOutcome, esn, patent",
    ),
    (
        "payment method",
        with_position(paymentMethod="full"),
        "items[0].paymentMethod: 'full' is not allowed; expected one of fullPrepayment, "
        "prepayment, advance, fullPayment, partialPayment, credit, creditPayment or its tag-1214 "
        "code",
    ),
    (
        "payment object",
        with_position(paymentObject="goods"),
        "items[0].paymentObject: 'goods' is not allowed; expected one of commodity, excise, job, "
        "service, gamblingBet, gamblingPrize, lottery, lotteryPrize, intellectualActivity, "
        "payment, agentCommission, composite, another, proprietaryLaw, nonOperatingIncome, "
        "insuranceContributions, otherContributions, merchantTax, resortFee, deposit, "
        "consumption, soleProprietorCPIContributions, cpiContributions, "
        "soleProprietorCMIContributions, cmiContributions, csiContributions, casinoPayment, "
        "fundsIssuance, exciseWithoutMarking, exciseWithMarking, commodityWithoutMarking, "
        "commodityWithMarking or its tag-1212 code",
    ),
    (
        "unit code",
        with_position(measurementUnit=5),
        f"items[0].measurementUnit: 5 is not an FFD 1.2 unit code; expected one of {UNITS}",
    ),
    (
        "unit text too long",
        with_position(measurementUnit="упаковка 10 штук" + "!"),
        "items[0].measurementUnit: 'упаковка 10 штук!' is 17 characters long; expected an FFD"
        " 1.2 unit name or code, or a free-text unit of at most 16 characters",
    ),
    (
        "unit empty",
        with_position(measurementUnit=""),
        "items[0].measurementUnit: is empty; expected a unit name such as piece or kilogram",
    ),
    (
        "unit fractional",
        with_position(measurementUnit=1.5),
        "items[0].measurementUnit: expected a unit name or an integer unit code, got a number",
    ),
    (
        "unit bool",
        with_position(measurementUnit=True),
        "items[0].measurementUnit: expected a unit name or an integer unit code, got true",
    ),
    # --- operator, buyer
    (
        "operator INN check digit",
        receipt(operator={"name": "Иванов", "vatin": "123456789012"}),
        "operator.vatin: '123456789012' is not a valid INN: its check digit is wrong",
    ),
    (
        "operator INN 10-digit check digit",
        receipt(operator={"name": "Иванов", "vatin": "7707083894"}),
        "operator.vatin: '7707083894' is not a valid INN: its check digit is wrong",
    ),
    (
        "operator INN length",
        receipt(operator={"name": "Иванов", "vatin": "12345678901"}),
        f"operator.vatin: '12345678901' is not an INN; {INN_EXPECTED}",
    ),
    (
        "operator INN letters",
        receipt(operator={"name": "Иванов", "vatin": "77070838x3"}),
        f"operator.vatin: '77070838x3' is not an INN; {INN_EXPECTED}",
    ),
    (
        "operator INN as a number",
        receipt(operator={"name": "Иванов", "vatin": 7707083893}),
        "operator.vatin: expected the INN as a string of digits, got a number",
    ),
    (
        "operator name missing",
        receipt(operator={"vatin": "7707083893"}),
        "operator.name: required field is missing",
    ),
    (
        "operator name too long",
        receipt(operator={"name": "О" * 65}),
        "operator.name: is 65 characters long; expected at most 64 characters",
    ),
    (
        "client INN",
        receipt(clientInfo={"vatin": "500100732250"}),
        "clientInfo.vatin: '500100732250' is not a valid INN: its check digit is wrong",
    ),
    (
        "contact neither email nor phone",
        receipt(clientInfo={"emailOrPhone": "ivanov"}),
        "clientInfo.emailOrPhone: 'ivanov' is neither an e-mail address nor a phone number; "
        "expected name@domain or + and the digits with the country code (+79161234567)",
    ),
    (
        "phone without +7",
        receipt(clientInfo={"emailOrPhone": "89161234567"}),
        "clientInfo.emailOrPhone: '89161234567' is not a phone in the FFD format; expected + and "
        "the digits with the country code, without spaces or dashes (+79161234567); write "
        "+79161234567",
    ),
    (
        "email without domain dot",
        receipt(clientInfo={"emailOrPhone": "a@localhost"}),
        "clientInfo.emailOrPhone: 'a@localhost' is neither an e-mail address nor a phone number; "
        "expected name@domain or + and the digits with the country code (+79161234567)",
    ),
    (
        "contact too long",
        receipt(clientInfo={"emailOrPhone": "a" * 54 + "@example.ru"}),
        "clientInfo.emailOrPhone: is 65 characters long; expected at most 64 characters",
    ),
    (
        "birth date",
        receipt(clientInfo={"name": "Иванов", "birthDate": "1990.02.01"}),
        "clientInfo.birthDate: '1990.02.01' is not a date; expected dd.mm.yyyy",
    ),
    (
        "e-receipt without contact",
        receipt(electronically=True),
        "clientInfo.emailOrPhone: required when electronically is true; expected the buyer's "
        "e-mail or phone (+ and digits) to send the receipt to",
    ),
    (
        "e-receipt with buyer name only",
        receipt(electronically=True, clientInfo={"name": "Иванов"}),
        "clientInfo.emailOrPhone: required when electronically is true; expected the buyer's "
        "e-mail or phone (+ and digits) to send the receipt to",
    ),
    (
        "electronically not a bool",
        receipt(electronically="maybe"),
        "electronically: expected true or false, got a string",
    ),
    # --- places
    (
        "payments address too long",
        receipt(paymentsAddress="а" * 257),
        "paymentsAddress: is 257 characters long; expected at most 256 characters",
    ),
    (
        "machine number too long",
        receipt(machineNumber="1" * 21),
        "machineNumber: is 21 characters long; expected at most 20 characters",
    ),
    # --- corrections
    (
        "correction type missing",
        {k: v for k, v in correction().items() if k != "correctionType"},
        "correctionType: required field is missing; expected self or instruction",
    ),
    (
        "correction date missing",
        {k: v for k, v in correction().items() if k != "correctionBaseDate"},
        "correctionBaseDate: required field is missing; expected a date as yyyy.mm.dd",
    ),
    (
        "correction type",
        correction(correctionType="other"),
        "correctionType: 'other' is not allowed; expected one of self, instruction",
    ),
    (
        "correction date format",
        correction(correctionBaseDate="2025-12-01"),
        "correctionBaseDate: '2025-12-01' is not a date; expected yyyy.mm.dd",
    ),
    (
        "correction date not on the calendar",
        correction(correctionBaseDate="2025.02.30"),
        "correctionBaseDate: '2025.02.30' is not a real calendar date; expected yyyy.mm.dd",
    ),
    (
        "correction date in dd.mm.yyyy",
        correction(correctionBaseDate="01.12.2025"),
        "correctionBaseDate: '01.12.2025' is not a date; expected yyyy.mm.dd",
    ),
    (
        "correction base number too long",
        correction(correctionBaseNumber="№" * 33),
        "correctionBaseNumber: is 33 characters long; expected at most 32 characters",
    ),
    # --- cash
    ("cash sum missing", {"type": "cashIn"}, "cashSum: required field is missing"),
    (
        "cash sum zero",
        {"type": "cashIn", "cashSum": 0},
        "cashSum: 0.00 is not positive; expected a sum greater than 0",
    ),
    (
        "cash sum negative",
        {"type": "cashOut", "cashSum": -5},
        "cashSum: -5.00 is negative; expected 0 or more",
    ),
    (
        "cash sum text",
        {"type": "cashIn", "cashSum": "сто"},
        "cashSum: 'сто' is a string; expected a JSON number such as 12.34 (without quotes)",
    ),
    # --- queries
    (
        "forReceipt not a bool",
        {"type": "getLastFiscalParams", "forReceipt": "maybe"},
        "forReceipt: expected true or false, got a string",
    ),
]


@pytest.mark.parametrize(("data", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_rule_violation_has_its_exact_message(data: object, expected: str) -> None:
    assert problems_of(data) == [expected]


def test_case_names_are_unique() -> None:
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names))


def test_all_field_problems_are_reported_together() -> None:
    data = sample_sell()
    data["operator"]["vatin"] = "123654789508"
    data["items"][0]["price"] = "1500.00"
    data["items"][0]["tax"] = {"type": "vat18"}
    data["payments"][0]["type"] = "card"
    data["colour"] = "red"  # ignored, as the driver ignores it
    data["Total"] = 1500  # a likely typo: refused with the suggestion
    assert problems_of(data) == [
        "Total: unknown field; did you mean total?"
        " (other unknown top-level keys are ignored, as the driver ignores them)",
        "operator.vatin: '123654789508' is not a valid INN: its check digit is wrong",
        "items[0].price: '1500.00' is a string; expected a JSON number such as 12.34"
        " (without quotes)",
        "items[0].tax.type: 'vat18' is obsolete (VAT 18 % was replaced by 20 % on 2019-01-01);"
        f" expected one of {TAXES}",
        "payments[0].type: 'card' is not allowed; expected one of cash, electronically,"
        " prepaid, credit, other or its tag-1031 code",
    ]


def test_all_receipt_rule_problems_are_reported_together() -> None:
    data = receipt(
        items=[position(amount=99), position(price=10, quantity=1, amount=10)],
        total=120,
        payments=[{"type": "electronically", "sum": 100}],
        electronically=True,
    )
    assert problems_of(data) == [
        "total: 120.00 is above the sum of the position amounts 109.00;"
        " expected 109.00 or up to 1.00 less (rounding)",
        "payments: 100.00 paid is less than the total 120.00; expected at least 120.00"
        " (the driver refuses it as Atol error 66, not fully paid)",
        "clientInfo.emailOrPhone: required when electronically is true;"
        " expected the buyer's e-mail or phone (+ and digits) to send the receipt to",
    ]


def test_error_text_lists_every_problem() -> None:
    with pytest.raises(TaskValidationError) as caught:
        parse_task(receipt(payments=[{"type": "card", "sum": "1.00"}]))
    error = caught.value
    assert isinstance(error, ValueError)
    assert str(error) == (
        "invalid task (2 problems):\n"
        "  - payments[0].type: 'card' is not allowed; expected one of cash, electronically,"
        " prepaid, credit, other or its tag-1031 code\n"
        "  - payments[0].sum: '1.00' is a string; expected a JSON number such as 12.34"
        " (without quotes)"
    )


def test_error_text_for_a_single_problem() -> None:
    with pytest.raises(TaskValidationError) as caught:
        parse_task({"type": "cashIn", "cashSum": 0})
    assert str(caught.value) == (
        "invalid task: cashSum: 0.00 is not positive; expected a sum greater than 0"
    )


def test_braces_in_the_input_are_quoted_verbatim() -> None:
    assert problems_of(receipt(payments=[{"type": "{message}", "sum": 100}])) == [
        "payments[0].type: '{message}' is not allowed; expected one of cash, electronically,"
        " prepaid, credit, other or its tag-1031 code"
    ]


def test_long_offending_values_are_cut_short_in_messages() -> None:
    assert problems_of(receipt(taxationType="x" * 1000)) == [
        "taxationType: '" + "x" * 38 + "… is not allowed; expected one of osn, usnIncome,"
        " usnIncomeOutcome, esn, patent"
    ]


@pytest.mark.parametrize("inn", ["7707083893", "7736207543", "500100732259", "123654789507"])
def test_valid_inns_pass_the_checksum(inn: str) -> None:
    assert inn_checksum_ok(inn)
    task = parse_task(receipt(operator={"name": "Иванов", "vatin": inn}, clientInfo={"vatin": inn}))
    assert task.type == "sell"


@pytest.mark.parametrize("inn", ["7707083890", "500100732258", "500100732269", "1234"])
def test_invalid_inns_fail_the_checksum(inn: str) -> None:
    assert not inn_checksum_ok(inn)


@pytest.mark.parametrize("contact", ["+79161234567", "ivanov@example.ru", "a.b+c@mail.example.com"])
def test_valid_contacts_are_accepted(contact: str) -> None:
    task = parse_task(receipt(electronically=True, clientInfo={"emailOrPhone": contact}))
    assert task.type == "sell"


def test_an_amount_off_price_times_quantity_is_a_discount_or_markup() -> None:
    for amount in (100.01, 99.99, 50.0, 150.0):
        data = receipt(items=[position(amount=amount)], payments=[{"type": "cash", "sum": 150}])
        assert parse_task(data).type == "sell"
