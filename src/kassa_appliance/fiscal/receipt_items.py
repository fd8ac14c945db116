"""The parts of an Atol receipt task as pydantic models, and the validated field types.

Owns the field types built on the value checks of :mod:`kassa_appliance.fiscal.receipt_rules`
(``Money``, ``Quantity``, ``Inn``, the enumerated choices, …), :class:`AtolModel` (the base
that refuses unknown fields) and the models of a receipt's parts: operator, buyer, taxes,
positions, text and barcode items, payments. The tasks that contain them, the cross-field
rules and the public API are in :mod:`kassa_appliance.fiscal.receipt`, which re-exports the
public names.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator
from pydantic_core import PydanticCustomError

from kassa_appliance.fiscal.receipt_enums import (
    ALIGNMENTS,
    BARCODE_TYPES,
    CORRECTION_TYPES,
    OBSOLETE_TAX_TYPES,
    OBSOLETE_TAXATION_TYPES,
    PAYMENT_METHODS,
    PAYMENT_OBJECTS,
    PAYMENT_TYPES,
    TAX_TYPES,
    TAXATION_TYPES,
    WRAP_MODES,
)
from kassa_appliance.fiscal.receipt_errors import VALUE_ERROR_TYPE
from kassa_appliance.fiscal.receipt_limits import (
    MAX_ADDRESS_LENGTH,
    MAX_BARCODE_LENGTH,
    MAX_CLIENT_NAME_LENGTH,
    MAX_NAME_LENGTH,
    MAX_OPERATOR_NAME_LENGTH,
    MAX_TEXT_LENGTH,
)
from kassa_appliance.fiscal.receipt_rules import (
    RuleError,
    check_choice,
    check_date,
    check_email_or_phone,
    check_inn,
    check_text,
    parse_measurement_unit,
    parse_money,
    parse_positive_money,
    parse_quantity,
)

__all__ = [
    "Alignment",
    "AtolModel",
    "BarcodeItem",
    "BarcodeType",
    "BirthDate",
    "ClientInfo",
    "CorrectionDate",
    "CorrectionType",
    "EmailOrPhone",
    "Inn",
    "Item",
    "JsonObject",
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
    "ReceiptTax",
    "Tax",
    "TaxType",
    "TaxationType",
    "TextItem",
    "WrapMode",
    "choice_rule",
    "text_rule",
    "value_rule",
]


def value_rule(check: Callable[[object], Any]) -> PlainValidator:
    """A pydantic validator running one of our value checks with our message."""

    def validate(value: object) -> Any:
        try:
            return check(value)
        except RuleError as error:
            raise PydanticCustomError(VALUE_ERROR_TYPE, str(error)) from None

    return PlainValidator(validate)


def choice_rule(allowed: tuple[str, ...], obsolete: dict[str, str] | None = None) -> PlainValidator:
    return value_rule(partial(check_choice, allowed=allowed, obsolete=obsolete))


def text_rule(max_length: int, *, allow_empty: bool = False) -> PlainValidator:
    return value_rule(partial(check_text, max_length=max_length, allow_empty=allow_empty))


Money = Annotated[Decimal, value_rule(parse_money)]
PositiveMoney = Annotated[Decimal, value_rule(parse_positive_money)]
Quantity = Annotated[Decimal, value_rule(parse_quantity)]
Inn = Annotated[str, value_rule(check_inn)]
EmailOrPhone = Annotated[str, value_rule(check_email_or_phone)]
MeasurementUnit = Annotated[str | int, value_rule(parse_measurement_unit)]
TaxType = Annotated[str, choice_rule(TAX_TYPES, OBSOLETE_TAX_TYPES)]
TaxationType = Annotated[str, choice_rule(TAXATION_TYPES, OBSOLETE_TAXATION_TYPES)]
PaymentType = Annotated[str, choice_rule(PAYMENT_TYPES)]
PaymentMethod = Annotated[str, choice_rule(PAYMENT_METHODS)]
PaymentObject = Annotated[str, choice_rule(PAYMENT_OBJECTS)]
CorrectionType = Annotated[str, choice_rule(CORRECTION_TYPES)]
Alignment = Annotated[str, choice_rule(ALIGNMENTS)]
WrapMode = Annotated[str, choice_rule(WRAP_MODES)]
BarcodeType = Annotated[str, choice_rule(BARCODE_TYPES)]
CorrectionDate = Annotated[str, value_rule(partial(check_date, fmt="yyyy.mm.dd"))]
BirthDate = Annotated[str, value_rule(partial(check_date, fmt="dd.mm.yyyy"))]
JsonObject = dict[str, Any]
"""An Atol sub-object we forward without validating it (see :mod:`.receipt`'s docstring)."""


class AtolModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- parts of a receipt ----------------------------------------------------------------------


class Operator(AtolModel):
    """The cashier (tags 1021/1203)."""

    name: Annotated[str, text_rule(MAX_OPERATOR_NAME_LENGTH)]
    vatin: Inn | None = None


class ClientInfo(AtolModel):
    """The buyer: contact for the e-receipt (1008) and FFD 1.2 buyer data (1256 group)."""

    emailOrPhone: EmailOrPhone | None = None
    name: Annotated[str, text_rule(MAX_CLIENT_NAME_LENGTH)] | None = None
    vatin: Inn | None = None
    birthDate: BirthDate | None = None
    citizenship: Annotated[str, text_rule(3)] | None = None
    identityDocumentCode: Annotated[str, text_rule(2)] | None = None
    identityDocumentData: Annotated[str, text_rule(64)] | None = None
    address: Annotated[str, text_rule(MAX_ADDRESS_LENGTH)] | None = None


class Tax(AtolModel):
    """VAT of one position; ``sum`` is optional (the register computes it)."""

    type: TaxType
    sum: Money | None = None


class ReceiptTax(AtolModel):
    """A receipt-level VAT total (``taxes[]``)."""

    type: TaxType
    sum: Money


class Position(AtolModel):
    """A fiscal line of the receipt (tag 1059)."""

    type: Literal["position"]
    name: Annotated[str, text_rule(MAX_NAME_LENGTH)]
    price: Money
    quantity: Quantity
    amount: Money
    """price × quantity − infoDiscountAmount, checked to ±0.01 by the receipt."""
    tax: Tax
    infoDiscountAmount: Money | None = None
    department: Annotated[int, Field(ge=0)] | None = None
    piece: bool | None = None
    measurementUnit: MeasurementUnit | None = None
    paymentMethod: PaymentMethod | None = None
    paymentObject: PaymentObject | None = None
    # Forwarded as given (marking, agents, industry data):
    nomenclatureCode: str | None = None
    imcParams: JsonObject | None = None
    industryInfo: list[JsonObject] | None = None
    agentInfo: JsonObject | None = None
    supplierInfo: JsonObject | None = None
    additionalAttribute: str | None = None
    additionalAttributePrint: bool | None = None
    exciseSum: Money | None = None
    countryCode: str | None = None
    customsDeclaration: str | None = None


class TextItem(AtolModel):
    """A non-fiscal text line printed within the receipt."""

    type: Literal["text"]
    text: Annotated[str, text_rule(MAX_TEXT_LENGTH, allow_empty=True)]
    alignment: Alignment | None = None
    wrap: WrapMode | None = None
    font: Annotated[int, Field(ge=0)] | None = None
    doubleWidth: bool | None = None
    doubleHeight: bool | None = None
    storeInJournal: bool | None = None


class BarcodeItem(AtolModel):
    """A barcode or QR code printed within the receipt."""

    type: Literal["barcode"]
    barcode: Annotated[str, text_rule(MAX_BARCODE_LENGTH)]
    barcodeType: BarcodeType
    alignment: Alignment | None = None
    scale: Annotated[int, Field(ge=1)] | None = None
    height: Annotated[int, Field(ge=1)] | None = None
    printText: bool | None = None


Item = Annotated[Position | TextItem | BarcodeItem, Field(discriminator="type")]
NonFiscalItem = Annotated[TextItem | BarcodeItem, Field(discriminator="type")]


class Payment(AtolModel):
    type: PaymentType
    sum: Money
