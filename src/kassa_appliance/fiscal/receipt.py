"""Typed, validated Atol JSON tasks (atol-notes §1.2–1.5), exactly as strict as the driver.

Every task the appliance runs passes :func:`parse_task` before it reaches a register, so a
bad receipt is refused with a precise message instead of an Atol error code, and a receipt
the driver would take is never refused. The rules follow the driver's own JSON-task scripts
(DTO10, public copy AlexanderYekat/atolexamplesjson: ``myscripts_validators.js``,
``myscripts_base_receipt.js``, ``myscripts_base_correction.js``); README "Which receipts are
accepted" lists them with their sources. ``to_driver_json(parse_task(x))`` is the task in
the normalised form every driver version takes: money rounded to kopecks, enumerations as
their names, ignored empty strings and unknown top-level keys left out.

Deliberate choices:

* **Unknown top-level keys are ignored** as the driver ignores them (``timestamp``,
  ``external_id``, ``zn`` from 1C-Bitrix), except a likely typo of a field, refused with the
  suggestion, and a driver field the appliance cannot pass on (:mod:`.receipt_fields`).
  Inside a task unknown keys stay refused (a nested typo would silently drop a requisite).
* **Money is Decimal** from parsing to :func:`to_driver_json`, rounded half up on the exact
  binary value as the driver's ``toFixed(2)`` does (``436.79999999999995`` → 436.80).
* **A position's amount is what the buyer pays**: it may differ from price × quantity (the
  register books the difference as a discount or markup); ``infoDiscountAmount`` is printed
  information only. The receipt ``total`` may be below the sum of the amounts by less than
  one rouble (the receipt-level rounding of kopecks); there is no fixed position count,
  only the driver's document size limit (:mod:`.receipt_size`).

This module owns the tasks, the cross-field receipt rules and the public API
(:func:`parse_task`, :func:`to_driver_json`, :func:`is_fiscal`). The parts of a receipt are
in :mod:`.receipt_items` and :mod:`.receipt_parts`; the public ones are re-exported here.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from kassa_appliance.fiscal.receipt_errors import (
    RULES_ERROR_TYPE,
    TaskValidationError,
    models_by_tag,
    problems_from,
    union_tags,
)
from kassa_appliance.fiscal.receipt_fields import split_top_level
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
    MAX_MACHINE_NUMBER_LENGTH,
)
from kassa_appliance.fiscal.receipt_parts import (
    AgentInfo,
    CompanyInfo,
    CustomParameter,
    IndustryInfo,
    OperationInfo,
    SupplierInfo,
)
from kassa_appliance.fiscal.receipt_rules import json_kind, one_of, shown
from kassa_appliance.fiscal.receipt_service_tasks import ServiceTask
from kassa_appliance.fiscal.receipt_size import size_problem
from kassa_appliance.fiscal.receipt_totals import (
    TOTAL_ROUNDING_LIMIT,
    payment_problems,
    position_problems,
    total_problems,
)
from kassa_appliance.inputs import InputRejected, check_value
from kassa_appliance.registers.base import FISCAL_TASK_TYPES

__all__ = [
    "TASK_TYPES",
    "TOTAL_ROUNDING_LIMIT",
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


class _ReceiptBase(AtolModel):
    """Fields shared by receipts and correction receipts (atol-notes §1.3)."""

    empty_ignored = frozenset({"taxationType", "paymentsPlace", "paymentsAddress", "machineNumber"})
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
    items: list[Item] | None = None
    """Required except in an FFD 1.05 correction (see :class:`CorrectionTask`)."""
    payments: list[Payment]
    taxes: list[ReceiptTax] | None = None
    total: Money | None = None
    """Given: at most :data:`TOTAL_ROUNDING_LIMIT` below the sum of the amounts. Absent: that
    sum."""
    preItems: list[NonFiscalItem] | None = None
    postItems: list[NonFiscalItem] | None = None
    companyInfo: CompanyInfo | None = None
    agentInfo: AgentInfo | None = None
    supplierInfo: SupplierInfo | None = None
    operationInfo: OperationInfo | None = None
    industryInfo: list[IndustryInfo] | None = None
    customParameters: list[CustomParameter] | None = None
    validateMarkingCodes: bool | None = None

    @property
    def positions(self) -> list[Position]:
        return [item for item in self.items or [] if isinstance(item, Position)]

    @property
    def items_total(self) -> Decimal:
        return sum((p.amount for p in self.positions), _ZERO)

    @property
    def change(self) -> Decimal:
        """Cash to hand back: what was paid beyond the total (only cash may exceed it)."""
        total = self.total if self.total is not None else self.items_total
        paid = sum((p.sum for p in self.payments), _ZERO)
        return max(paid - total, _ZERO)

    def _items_required(self) -> bool:
        return True

    @model_validator(mode="after")
    def _check_receipt(self) -> _ReceiptBase:
        problems: list[str] = []
        if self.items is None:
            if self._items_required():
                problems.append("items: required field is missing; expected a list of items")
            total = (
                self.total if self.total is not None else sum((p.sum for p in self.payments), _ZERO)
            )
        else:
            problems += position_problems(self.items)
            problems += total_problems(self.total, self.items_total)
            total = self.total if self.total is not None else self.items_total
            problems += payment_problems(self.payments, total)
        if self.electronically and not (self.clientInfo and self.clientInfo.emailOrPhone):
            problems.append(
                "clientInfo.emailOrPhone: required when electronically is true;"
                " expected the buyer's e-mail or phone (+ and digits) to send the receipt to"
            )
        if not problems and self.items is not None:
            too_large = size_problem(self.model_dump(exclude_none=True))
            if too_large:
                problems.append(too_large)
        if problems:
            raise PydanticCustomError(RULES_ERROR_TYPE, "receipt rules", {"problems": problems})
        self.total = total
        return self


# --- tasks -----------------------------------------------------------------------------------


class ReceiptTask(_ReceiptBase):
    """``sell``, ``sellReturn``, ``buy``, ``buyReturn``."""

    type: Literal["sell", "sellReturn", "buy", "buyReturn"]


class CorrectionTask(_ReceiptBase):
    """Correction receipts. FFD 1.2: items and payments like a normal receipt. FFD 1.05
    style (registers still on 1.05): no items, the sums in ``payments`` and ``taxes`` and
    the reason in ``correctionBaseName`` (the driver's validateOldCorrection)."""

    type: Literal["sellCorrection", "sellReturnCorrection", "buyCorrection", "buyReturnCorrection"]
    correctionType: CorrectionType
    correctionBaseDate: CorrectionDate
    correctionBaseNumber: (
        Annotated[str, text_rule(MAX_CORRECTION_BASE_NUMBER_LENGTH, allow_empty=True)] | None
    ) = None
    correctionBaseName: Annotated[str, text_rule(MAX_ADDRESS_LENGTH)] | None = None
    """FFD 1.05 only."""

    def _items_required(self) -> bool:
        return False


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
    ReceiptTask
    | CorrectionTask
    | ShiftTask
    | CashTask
    | QueryTask
    | LastFiscalParamsTask
    | ServiceTask,
    Field(discriminator="type"),
]
TASK_TYPES: tuple[str, ...] = tuple(union_tags(Task))

_MODELS = models_by_tag(Task)

_TASK_ADAPTER: TypeAdapter[
    ReceiptTask
    | CorrectionTask
    | ShiftTask
    | CashTask
    | QueryTask
    | LastFiscalParamsTask
    | ServiceTask
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
    model = _MODELS[task_type]
    kept, problems = split_top_level(data, model.model_fields)
    try:
        task = _TASK_ADAPTER.validate_python(kept)
    except ValidationError as error:
        raise TaskValidationError(problems + problems_from(error, Task)) from None
    if problems:
        raise TaskValidationError(problems)
    return task


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    return value


def to_driver_json(task: Task) -> dict[str, Any]:
    """The task as the driver takes it, normalised: Atol field names, no null fields and no
    ignored empty strings, enumerations as names, money as numbers rounded to kopecks.

    Floats are exact here: every Decimal has ≤ 2 (money) or 6 (quantity) decimals and is
    bounded (receipt_limits.MAX_MONEY), so ``Decimal(str(f))`` gives the same value back.
    """
    result: dict[str, Any] = _jsonable(task.model_dump(exclude_none=True))
    return result


def is_fiscal(task: Task) -> bool:
    """Whether the task creates a fiscal document (consumes an FD number)."""
    return task.type in FISCAL_TASK_TYPES
