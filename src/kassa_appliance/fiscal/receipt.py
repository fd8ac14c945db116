"""Typed, validated Atol JSON tasks (atol-notes §1.2–1.5).

Every task the appliance runs passes :func:`parse_task` before it reaches a register, so a
bad receipt is refused with a precise message instead of an Atol error code (or, worse, a
wrong fiscal document). Field names are exactly Atol's, so ``to_driver_json(parse_task(x))``
is the same task with money normalised.

Deliberate choices:

* **Unknown fields are refused** (``extra="forbid"``) on every model: a typo such as
  ``"prise"`` would otherwise be dropped silently and the register would print a receipt
  without the intended value. Atol fields we do not validate but that a legitimate task may
  carry (``companyInfo``, ``agentInfo``, ``supplierInfo``, ``imcParams``, ``industryInfo``,
  ...) are declared as opaque pass-through values, so they are accepted and forwarded
  unchanged; anything else needs a line here first.
* **Money is Decimal** from parsing to :func:`to_driver_json`. JSON numbers are converted
  through their shortest repr (``0.1`` → ``Decimal("0.1")``), never by binary arithmetic;
  sums are exact. Only the driver JSON carries floats, as the driver wants numbers.
* Cross-field rules (amount = price × quantity − discount, totals, payments, e-receipt
  contact) run after the fields themselves are valid; a task with field errors reports
  those first.

This module owns the tasks (receipts, corrections, shift, cash and query tasks), the
cross-field receipt rules and the public API (:func:`parse_task`, :func:`to_driver_json`,
:func:`is_fiscal`). The models of a receipt's parts (positions, text and barcode items,
payments, taxes, operator, buyer) and the validated field types are in
:mod:`kassa_appliance.fiscal.receipt_items`; the public ones are re-exported here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from kassa_appliance.fiscal.receipt_errors import (
    RULES_ERROR_TYPE,
    TaskValidationError,
    problems_from,
    union_tags,
)
from kassa_appliance.fiscal.receipt_items import (
    Alignment,
    AtolModel,
    BarcodeItem,
    BarcodeType,
    BirthDate,
    ClientInfo,
    CorrectionDate,
    CorrectionType,
    EmailOrPhone,
    Inn,
    Item,
    JsonObject,
    MeasurementUnit,
    Money,
    NonFiscalItem,
    Operator,
    Payment,
    PaymentMethod,
    PaymentObject,
    PaymentType,
    Position,
    PositiveMoney,
    Quantity,
    ReceiptTax,
    Tax,
    TaxationType,
    TaxType,
    TextItem,
    WrapMode,
    text_rule,
)
from kassa_appliance.fiscal.receipt_limits import (
    MAX_ADDRESS_LENGTH,
    MAX_CORRECTION_BASE_NUMBER_LENGTH,
    MAX_ITEMS,
    MAX_MACHINE_NUMBER_LENGTH,
    MAX_PAYMENTS,
    MAX_POSITIONS,
)
from kassa_appliance.fiscal.receipt_rules import json_kind, one_of, shown
from kassa_appliance.inputs import InputRejected, check_value
from kassa_appliance.registers.base import FISCAL_TASK_TYPES

__all__ = [
    "AMOUNT_TOLERANCE",
    "TASK_TYPES",
    "Alignment",
    "BarcodeItem",
    "BarcodeType",
    "BirthDate",
    "CashTask",
    "ClientInfo",
    "CorrectionDate",
    "CorrectionTask",
    "CorrectionType",
    "EmailOrPhone",
    "Inn",
    "Item",
    "JsonObject",
    "LastFiscalParamsTask",
    "MeasurementUnit",
    "Money",
    "NonFiscalItem",
    "Operator",
    "Payment",
    "PaymentMethod",
    "PaymentObject",
    "PaymentType",
    "Position",
    "PositiveMoney",
    "Quantity",
    "QueryTask",
    "ReceiptTask",
    "ReceiptTax",
    "ShiftTask",
    "Task",
    "TaskValidationError",
    "Tax",
    "TaxType",
    "TaxationType",
    "TextItem",
    "WrapMode",
    "is_fiscal",
    "parse_task",
    "to_driver_json",
]


# --- receipt rules ---------------------------------------------------------------------------

_ZERO = Decimal("0.00")
AMOUNT_TOLERANCE = Decimal("0.01")
"""How far a position's ``amount`` may be from price × quantity − discount (rounding)."""


def _position_problems(items: list[Position | TextItem | BarcodeItem]) -> list[str]:
    problems: list[str] = []
    positions = [(i, item) for i, item in enumerate(items) if isinstance(item, Position)]
    if not positions:
        problems.append("items: no position; expected at least one item of type position")
    if len(positions) > MAX_POSITIONS:
        problems.append(
            f"items: {len(positions)} positions; expected at most {MAX_POSITIONS} per receipt"
        )
    for index, position in positions:
        discount = position.infoDiscountAmount or _ZERO
        expected = position.price * position.quantity - discount
        if abs(position.amount - expected) > AMOUNT_TOLERANCE:
            problems.append(
                f"items[{index}].amount: {position.amount} does not match"
                f" price × quantity − infoDiscountAmount = {expected};"
                f" expected a difference of at most {AMOUNT_TOLERANCE}"
            )
    return problems


def _payment_problems(payments: list[Payment], total: Decimal) -> list[str]:
    if not payments:
        return ["payments: no payment; expected at least one payment"]
    paid = sum((p.sum for p in payments), _ZERO)
    non_cash = sum((p.sum for p in payments if p.type != "cash"), _ZERO)
    if non_cash > total:
        return [
            f"payments: non-cash payments of {non_cash} exceed the total {total};"
            " expected only cash to exceed the total (change is given in cash)"
        ]
    if paid < total:
        return [f"payments: {paid} paid is less than the total {total}; expected at least {total}"]
    return []


class _ReceiptBase(AtolModel):
    """Fields shared by receipts and correction receipts (atol-notes §1.3)."""

    type: str
    """Narrowed to the receipt kinds by each subclass (declared here to come first)."""
    taxationType: TaxationType | None = None
    electronically: bool | None = None
    ignoreNonFiscalPrintErrors: bool | None = None
    operator: Operator | None = None
    clientInfo: ClientInfo | None = None
    paymentsPlace: Annotated[str, text_rule(MAX_ADDRESS_LENGTH)] | None = None
    paymentsAddress: Annotated[str, text_rule(MAX_ADDRESS_LENGTH)] | None = None
    machineNumber: Annotated[str, text_rule(MAX_MACHINE_NUMBER_LENGTH)] | None = None
    items: Annotated[list[Item], Field(max_length=MAX_ITEMS)]
    payments: Annotated[list[Payment], Field(max_length=MAX_PAYMENTS)]
    taxes: list[ReceiptTax] | None = None
    total: Money | None = None
    """Given: must equal the sum of position amounts. Absent: set to that sum."""
    preItems: list[NonFiscalItem] | None = None
    postItems: list[NonFiscalItem] | None = None
    # Forwarded as given:
    companyInfo: JsonObject | None = None
    agentInfo: JsonObject | None = None
    supplierInfo: JsonObject | None = None
    validateMarkingCodes: bool | None = None

    @property
    def positions(self) -> list[Position]:
        return [item for item in self.items if isinstance(item, Position)]

    @property
    def items_total(self) -> Decimal:
        return sum((p.amount for p in self.positions), _ZERO)

    @property
    def change(self) -> Decimal:
        """Cash to hand back: what was paid beyond the total (only cash may exceed it)."""
        total = self.total if self.total is not None else self.items_total
        paid = sum((p.sum for p in self.payments), _ZERO)
        return max(paid - total, _ZERO)

    @model_validator(mode="after")
    def _check_receipt(self) -> _ReceiptBase:
        problems = _position_problems(self.items)
        items_total = self.items_total
        if self.total is not None and self.total != items_total:
            problems.append(
                f"total: {self.total} does not match the sum of the position amounts"
                f" {items_total}; expected {items_total}"
            )
        total = self.total if self.total is not None else items_total
        problems += _payment_problems(self.payments, total)
        if self.electronically and not (self.clientInfo and self.clientInfo.emailOrPhone):
            problems.append(
                "clientInfo.emailOrPhone: required when electronically is true;"
                " expected the buyer's e-mail or +7 phone to send the receipt to"
            )
        if problems:
            raise PydanticCustomError(RULES_ERROR_TYPE, "receipt rules", {"problems": problems})
        self.total = total
        return self


# --- tasks -----------------------------------------------------------------------------------


class ReceiptTask(_ReceiptBase):
    """``sell``, ``sellReturn``, ``buy``, ``buyReturn``."""

    type: Literal["sell", "sellReturn", "buy", "buyReturn"]


class CorrectionTask(_ReceiptBase):
    """Correction receipts (FFD 1.2: items and payments like a normal receipt)."""

    type: Literal["sellCorrection", "sellReturnCorrection", "buyCorrection", "buyReturnCorrection"]
    correctionType: CorrectionType
    correctionBaseDate: CorrectionDate
    correctionBaseNumber: (
        Annotated[str, text_rule(MAX_CORRECTION_BASE_NUMBER_LENGTH, allow_empty=True)] | None
    ) = None
    correctionBaseName: Annotated[str, text_rule(MAX_ADDRESS_LENGTH)] | None = None
    """FFD 1.05 only."""


class ShiftTask(AtolModel):
    """Open or close the shift (fiscal) or print an X report (not fiscal)."""

    type: Literal["openShift", "closeShift", "reportX"]
    operator: Operator | None = None
    electronically: bool | None = None


class CashTask(AtolModel):
    """Put cash into or take it out of the drawer."""

    type: Literal["cashIn", "cashOut"]
    cashSum: PositiveMoney
    operator: Operator | None = None


class QueryTask(AtolModel):
    """Status queries and ``continuePrint``: no parameters."""

    type: Literal[
        "getShiftStatus",
        "getDeviceStatus",
        "getDeviceInfo",
        "getFnInfo",
        "getFnStatus",
        "continuePrint",
    ]


class LastFiscalParamsTask(AtolModel):
    """Fiscal data of the last document (or the last receipt with ``forReceipt``)."""

    type: Literal["getLastFiscalParams"]
    forReceipt: bool | None = None


Task = Annotated[
    ReceiptTask | CorrectionTask | ShiftTask | CashTask | QueryTask | LastFiscalParamsTask,
    Field(discriminator="type"),
]
TASK_TYPES: tuple[str, ...] = tuple(union_tags(Task))

_TASK_ADAPTER: TypeAdapter[
    ReceiptTask | CorrectionTask | ShiftTask | CashTask | QueryTask | LastFiscalParamsTask
] = TypeAdapter(Task)


# --- public API ------------------------------------------------------------------------------


def parse_task(data: object) -> Task:
    """Validate a decoded JSON task; raises :class:`TaskValidationError` listing every problem.

    The input limits (:func:`kassa_appliance.inputs.check_value`: depth, sizes, numbers,
    valid Unicode) are checked first, so every door that validates gets them and nothing
    deeper (pydantic, the driver JSON, the journal) meets a value that would raise."""
    try:
        check_value(data, "task")
    except InputRejected as error:
        raise TaskValidationError([str(error)]) from None
    if not isinstance(data, dict):
        raise TaskValidationError([f"task: expected a JSON object, got {json_kind(data)}"])
    supported = one_of(TASK_TYPES)
    if "type" not in data:
        raise TaskValidationError([f"type: required field is missing; expected one of {supported}"])
    task_type = data["type"]
    if not isinstance(task_type, str):
        raise TaskValidationError(
            [f"type: expected one of {supported}, got {json_kind(task_type)}"]
        )
    if task_type not in TASK_TYPES:
        raise TaskValidationError(
            [f"type: {shown(task_type)} is not a supported task type; expected one of {supported}"]
        )
    try:
        return _TASK_ADAPTER.validate_python(data)
    except ValidationError as error:
        raise TaskValidationError(problems_from(error, Task)) from None


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def to_driver_json(task: Task) -> dict[str, Any]:
    """The task as the driver takes it: Atol field names, no null fields, money as numbers.

    Floats are exact here: every Decimal has ≤ 2 (money) or 3 (quantity) decimals and is
    bounded (receipt_rules.MAX_MONEY), so ``Decimal(str(f))`` gives the same value back.
    """
    result: dict[str, Any] = _jsonable(task.model_dump(exclude_none=True))
    return result


def is_fiscal(task: Task) -> bool:
    """Whether the task creates a fiscal document (consumes an FD number)."""
    return task.type in FISCAL_TASK_TYPES
