"""The sub-objects of an Atol receipt the driver validates structurally, as pydantic models.

Each model follows the driver's own validator of that object (AlexanderYekat/atolexamplesjson,
``myscripts_validators.js`` and ``myscripts_base_receipt.js``): the same required fields, the
same types (numbers must be JSON numbers, flags true/false, lists lists) and the same allowed
values, with the FFD tag each one fills. Owns: company, agent and supplier data, marking
(``imcParams`` FFD 1.2, ``markingCode`` and ``nomenclatureCode`` FFD 1.05), product codes
(1163), custom parameters, industry (1260/1261) and operation (1270) data, and the item types
``userAttribute`` (1084) and ``additionalAttribute`` (1192).
"""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from kassa_appliance.fiscal.receipt_base import AtolModel, value_rule
from kassa_appliance.fiscal.receipt_enums import (
    AGENT_TYPES,
    ESTIMATED_STATUSES,
    IMC_TYPES,
    MARKING_CODE_TYPES,
    NOMENCLATURE_TYPES,
)
from kassa_appliance.fiscal.receipt_errors import VALUE_ERROR_TYPE
from kassa_appliance.fiscal.receipt_rules import RuleError, check_choice, json_kind, one_of, shown

__all__ = [
    "AdditionalAttributeItem",
    "AgentInfo",
    "CompanyInfo",
    "CustomParameter",
    "ImcParams",
    "IndustryInfo",
    "MarkingCode",
    "NomenclatureCode",
    "NomenclatureValue",
    "OperationInfo",
    "ProductCodes",
    "SupplierInfo",
    "UserAttributeItem",
]

_DATE = re.compile(r"[0-9]{4}.[0-9]{2}.[0-9]{2}")
_DATE_TIME = re.compile(r"[0-9]{4}.[0-9]{2}.[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")


def _pattern(value: object, pattern: re.Pattern[str], expected: str) -> str:
    if not isinstance(value, str):
        raise RuleError(f"expected {expected}, got {json_kind(value)}")
    if not pattern.fullmatch(value):
        raise RuleError(f"{shown(value)} is not {expected}")
    return value


def _name_or_number(value: object, names: tuple[str, ...]) -> str | int | float:
    """``mustDictValueOrMissing``: one of the names, or any number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    return check_choice(value, names)


Phones = list[str]
DriverDate = Annotated[
    str, value_rule(partial(_pattern, pattern=_DATE, expected="a date yyyy.mm.dd"))
]
DriverDateTime = Annotated[
    str,
    value_rule(
        partial(_pattern, pattern=_DATE_TIME, expected="a date and time yyyy.mm.dd HH:MM:SS")
    ),
]


def _check_number(value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RuleError(f"expected a number, got {json_kind(value)}")
    return value


def _check_unit(value: object) -> str | int:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RuleError(f"expected a unit name or code, got {json_kind(value)}")
    return value


Number = Annotated[int | float, value_rule(_check_number)]


class CompanyInfo(AtolModel):
    """The seller's e-mail (tag 1117)."""

    empty_ignored = frozenset({"email"})
    email: str | None = None


class PayingAgent(AtolModel):
    empty_ignored = frozenset({"operation"})
    operation: str | None = None
    """Tag 1044."""
    phones: Phones | None = None
    """Tag 1073."""


class ReceivePaymentsOperator(AtolModel):
    phones: Phones | None = None
    """Tag 1074."""


class MoneyTransferOperator(AtolModel):
    empty_ignored = frozenset({"name", "address", "vatin"})
    name: str | None = None
    """Tag 1026."""
    address: str | None = None
    """Tag 1005."""
    vatin: str | None = None
    """Tag 1016."""
    phones: Phones | None = None
    """Tag 1075."""


def _check_agent_type(value: object) -> str:
    return check_choice(value, AGENT_TYPES)


class AgentInfo(AtolModel):
    """Agent data (tags 1057/1222 and the 1223 group)."""

    agents: list[Annotated[str, value_rule(_check_agent_type)]] | None = None
    agentsPrint: bool | None = None
    agentDataPrint: bool | None = None
    payingAgent: PayingAgent | None = None
    receivePaymentsOperator: ReceivePaymentsOperator | None = None
    moneyTransferOperator: MoneyTransferOperator | None = None


class SupplierInfo(AtolModel):
    """Supplier data (tag 1224 group: 1225 name, 1226 INN, 1171 phones)."""

    empty_ignored = frozenset({"name", "vatin"})
    name: str | None = None
    vatin: str | None = None
    supplierPrint: bool | None = None
    supplierVatinPrint: bool | None = None
    phones: Phones | None = None


class ItemInfoCheckResult(AtolModel):
    """Result of the marking-code check (tag 2106); every flag is required."""

    imcCheckFlag: bool
    imcCheckResult: bool
    imcStatusInfo: bool
    imcEstimatedStatusCorrect: bool
    ecrStandAloneFlag: bool


class ImcParams(AtolModel):
    """FFD 1.2 marking code of a position (tags 2000, 2003, 2102, 2106, 1305...)."""

    imc: str
    imcType: (
        Annotated[str | int | float, value_rule(partial(_name_or_number, names=IMC_TYPES))] | None
    ) = None
    itemEstimatedStatus: (
        Annotated[str | int | float, value_rule(partial(_name_or_number, names=ESTIMATED_STATUSES))]
        | None
    ) = None
    itemFractionalAmount: str | None = None
    imcModeProcessing: Number | None = None
    imcBarcode: str | None = None
    itemInfoCheckResult: ItemInfoCheckResult | None = None
    itemQuantity: Number | None = None
    itemUnits: Annotated[str | int, value_rule(_check_unit)] | None = None


class MarkingCode(AtolModel):
    """FFD 1.05 marking code (base64 ``mark``)."""

    mark: str
    type: Annotated[str, value_rule(partial(check_choice, allowed=MARKING_CODE_TYPES))] | None = (
        None
    )


class NomenclatureCode(AtolModel):
    """FFD 1.05 nomenclature code (tag 1162) built by the driver from its parts."""

    type: Annotated[str, value_rule(partial(check_choice, allowed=NOMENCLATURE_TYPES))]
    gtin: str | None = None
    serial: str


def _nomenclature(value: object) -> str | dict[str, Any]:
    """``nomenclatureCode``: the code in base64, or its parts for the driver to build it."""
    if isinstance(value, str):
        return value
    expected = (
        f"an object with type ({one_of(list(NOMENCLATURE_TYPES))}), serial and optionally gtin"
    )
    if isinstance(value, dict):
        try:
            return NomenclatureCode.model_validate(value).model_dump(exclude_none=True)
        except ValidationError:
            raise RuleError(f"is not a valid code object; expected {expected}") from None
    raise RuleError(
        f"expected the code in base64 as a string, or {expected}, got {json_kind(value)}"
    )


NomenclatureValue = Annotated[str | dict[str, Any], value_rule(_nomenclature)]
"""Tag 1162: a string (base64) or the parts of the code (myscripts_validators.js)."""

_PRODUCT_CODE_TAGS = (
    "undefined",
    "ean8",
    "ean13",
    "itf14",
    "gs10",
    "gs1m",
    "short",
    "furs",
    "egais20",
    "egais30",
    "f1",
    "f2",
    "f3",
    "f4",
    "f5",
    "f6",
)


class ProductCodes(AtolModel):
    """Product codes (tag 1163: 1300–1309, 1320–1325), either by kind or as ``codes[]``."""

    undefined: str | None = None
    ean8: str | None = None
    ean13: str | None = None
    itf14: str | None = None
    gs10: str | None = None
    gs1m: str | None = None
    short: str | None = None
    furs: str | None = None
    egais20: str | None = None
    egais30: str | None = None
    f1: str | None = None
    f2: str | None = None
    f3: str | None = None
    f4: str | None = None
    f5: str | None = None
    f6: str | None = None
    codes: list[str] | None = None

    @model_validator(mode="after")
    def _one_form(self) -> ProductCodes:
        named = any(getattr(self, tag) is not None for tag in _PRODUCT_CODE_TAGS)
        if named == (self.codes is not None):
            kinds = one_of(list(_PRODUCT_CODE_TAGS))
            state = "both" if named else "neither"
            raise PydanticCustomError(
                VALUE_ERROR_TYPE,
                f"{state} codes[] and named codes given; expected either codes[] or codes by"
                f" kind ({kinds}), as the driver takes one form only (tag 1163)",
            )
        return self


class CustomParameter(AtolModel):
    """A user parameter of the register (``setUserParam``): a number and a text."""

    id: Number
    value: str


class IndustryInfo(AtolModel):
    """Industry requisite (tag 1260 per position, 1261 per receipt: 1262–1265)."""

    empty_ignored = frozenset({"fois", "number", "industryAttribute", "date"})
    fois: str | None = None
    date: DriverDate | None = None
    number: str | None = None
    industryAttribute: str | None = None


class OperationInfo(AtolModel):
    """Operational requisite of the receipt (tag 1270: 1271 id, 1272 data, 1273 time)."""

    empty_ignored = frozenset({"data"})
    id: Number | None = None
    data: str | None = None
    dateTime: DriverDateTime | None = None


class UserAttributeItem(AtolModel):
    """Additional user requisite (tag 1084: 1085 name, 1086 value)."""

    type: Literal["userAttribute"]
    name: str | None = None
    value: str | None = None
    print: bool | None = None


class AdditionalAttributeItem(AtolModel):
    """Additional requisite of the receipt (tag 1192)."""

    type: Literal["additionalAttribute"]
    value: Annotated[str, Field()]
    print: bool | None = None
