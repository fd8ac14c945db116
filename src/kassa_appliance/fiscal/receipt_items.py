"""The parts of an Atol receipt task as pydantic models, and the validated field types.

Owns the field types built on the value checks of :mod:`kassa_appliance.fiscal.receipt_rules`
(``Money``, ``Quantity``, ``Inn``, the enumerated choices, …), :class:`AtolModel` (the base
that refuses unknown fields) and the models of a receipt's parts: operator, buyer, taxes,
positions, text and barcode items, payments. The tasks that contain them, the cross-field
rules and the public API are in :mod:`kassa_appliance.fiscal.receipt`, which re-exports the
public names.
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import Field

from kassa_appliance.fiscal.receipt_base import AtolModel, choice_rule, text_rule, value_rule
from kassa_appliance.fiscal.receipt_enums import (
    ALIGNMENTS,
    BARCODE_TYPES,
    CORRECTION_TYPES,
    OBSOLETE_TAXATION_TYPES,
    PAYMENT_METHOD_CODES,
    PAYMENT_METHODS,
    PAYMENT_OBJECT_ALIASES,
    PAYMENT_OBJECT_CODES,
    PAYMENT_OBJECTS,
    PAYMENT_TYPE_CODES,
    PAYMENT_TYPES,
    TAXATION_TYPES,
    WRAP_MODES,
)
from kassa_appliance.fiscal.receipt_limits import (
    MAX_ADDRESS_LENGTH,
    MAX_BARCODE_LENGTH,
    MAX_CLIENT_NAME_LENGTH,
    MAX_NAME_LENGTH,
    MAX_OPERATOR_NAME_LENGTH,
    MAX_TEXT_LENGTH,
)
from kassa_appliance.fiscal.receipt_parts import (
    AdditionalAttributeItem,
    AgentInfo,
    CustomParameter,
    ImcParams,
    IndustryInfo,
    MarkingCode,
    NomenclatureValue,
    ProductCodes,
    SupplierInfo,
    UserAttributeItem,
)
from kassa_appliance.fiscal.receipt_rules import (
    check_date,
    check_inn,
    parse_measurement_unit,
    parse_money,
    parse_positive_money,
    parse_quantity,
)
from kassa_appliance.fiscal.receipt_values import (
    check_email_or_phone,
    parse_coded_choice,
    parse_tax_type,
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


Money = Annotated[Decimal, value_rule(parse_money)]
PositiveMoney = Annotated[Decimal, value_rule(parse_positive_money)]
Quantity = Annotated[Decimal, value_rule(parse_quantity)]
Inn = Annotated[str, value_rule(check_inn)]
EmailOrPhone = Annotated[str, value_rule(check_email_or_phone)]
MeasurementUnit = Annotated[str | int, value_rule(parse_measurement_unit)]
TaxType = Annotated[str, value_rule(parse_tax_type)]
TaxationType = Annotated[str, choice_rule(TAXATION_TYPES, OBSOLETE_TAXATION_TYPES)]
PaymentType = Annotated[
    str,
    value_rule(
        partial(parse_coded_choice, names=PAYMENT_TYPES, codes=PAYMENT_TYPE_CODES, tag=1031)
    ),
]
PaymentMethod = Annotated[
    str,
    value_rule(
        partial(parse_coded_choice, names=PAYMENT_METHODS, codes=PAYMENT_METHOD_CODES, tag=1214)
    ),
]
PaymentObject = Annotated[
    str,
    value_rule(
        partial(
            parse_coded_choice,
            names=PAYMENT_OBJECTS,
            codes=PAYMENT_OBJECT_CODES,
            aliases=PAYMENT_OBJECT_ALIASES,
            tag=1212,
        )
    ),
]
CorrectionType = Annotated[str, choice_rule(CORRECTION_TYPES)]
Alignment = Annotated[str, choice_rule(ALIGNMENTS)]
WrapMode = Annotated[str, choice_rule(WRAP_MODES)]
BarcodeType = Annotated[str, choice_rule(BARCODE_TYPES)]
CorrectionDate = Annotated[str, value_rule(partial(check_date, fmt="yyyy.mm.dd"))]
BirthDate = Annotated[str, value_rule(partial(check_date, fmt="dd.mm.yyyy"))]
JsonObject = dict[str, Any]
"""An Atol sub-object we forward without validating it (see :mod:`.receipt`'s docstring)."""


# --- parts of a receipt ----------------------------------------------------------------------


class Operator(AtolModel):
    """The cashier (tags 1021/1203). An empty name makes the driver skip the cashier."""

    empty_ignored = frozenset({"vatin"})
    name: Annotated[str, text_rule(MAX_OPERATOR_NAME_LENGTH, allow_empty=True)]
    vatin: Inn | None = None


class ClientInfo(AtolModel):
    """The buyer: contact for the e-receipt (1008) and FFD 1.2 buyer data (1256 group).
    The driver ignores every empty value here (``IGNORE_IF_EMPTY``)."""

    empty_ignored = frozenset(
        {
            "emailOrPhone",
            "name",
            "vatin",
            "birthDate",
            "citizenship",
            "identityDocumentCode",
            "identityDocumentData",
            "address",
        }
    )
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
    """A fiscal line of the receipt (tag 1059), as the driver's validatePositionItem takes it."""

    empty_ignored = frozenset(
        {"paymentMethod", "paymentObject", "countryCode", "customsDeclaration"}
    )
    type: Literal["position"]
    name: Annotated[str, text_rule(MAX_NAME_LENGTH)]
    price: Money
    quantity: Quantity
    amount: Money
    """What the buyer pays for the line. It may differ from price × quantity: the register
    takes the difference as a discount or a markup (DTO10 guide, POSITION_SUM)."""
    tax: Tax
    infoDiscountAmount: Money | None = None
    """Printed as information only; not a term of any equation."""
    department: Annotated[int, Field(ge=0)] | None = None
    piece: bool | None = None
    measurementUnit: MeasurementUnit | None = None
    paymentMethod: PaymentMethod | None = None
    paymentObject: PaymentObject | None = None
    nomenclatureCode: NomenclatureValue | None = None
    markingCode: MarkingCode | None = None
    imcParams: ImcParams | None = None
    productCodes: ProductCodes | None = None
    industryInfo: list[IndustryInfo] | None = None
    agentInfo: AgentInfo | None = None
    supplierInfo: SupplierInfo | None = None
    additionalAttribute: str | None = None
    additionalAttributePrint: bool | None = None
    exciseSum: Money | None = None
    countryCode: str | None = None
    customsDeclaration: str | None = None
    customParameters: list[CustomParameter] | None = None


class TextItem(AtolModel):
    """A non-fiscal text line printed within the receipt."""

    empty_ignored = frozenset({"alignment", "wrap"})
    type: Literal["text"]
    text: Annotated[str, text_rule(MAX_TEXT_LENGTH, allow_empty=True)] | None = None
    alignment: Alignment | None = None
    wrap: WrapMode | None = None
    font: Annotated[int, Field(ge=0)] | None = None
    doubleWidth: bool | None = None
    doubleHeight: bool | None = None
    storeInJournal: bool | None = None


class BarcodeItem(AtolModel):
    """A barcode or QR code printed within the receipt."""

    empty_ignored = frozenset({"alignment"})
    type: Literal["barcode"]
    barcode: Annotated[str, text_rule(MAX_BARCODE_LENGTH)]
    barcodeType: BarcodeType
    alignment: Alignment | None = None
    scale: Annotated[int, Field(ge=1)] | None = None
    height: Annotated[int, Field(ge=1)] | None = None
    printText: bool | None = None
    storeInJournal: bool | None = None


Item = Annotated[
    Position | TextItem | BarcodeItem | UserAttributeItem | AdditionalAttributeItem,
    Field(discriminator="type"),
]
NonFiscalItem = Annotated[TextItem | BarcodeItem, Field(discriminator="type")]


class Payment(AtolModel):
    """A payment: type by name or code (0–9), sum, and lines printed with it."""

    type: PaymentType
    sum: Money
    printItems: list[NonFiscalItem] | None = None
