"""Typed Atol tasks that real integrations call besides receipts, shifts and cash.

None of them creates a fiscal document (none is in ``FISCAL_TASK_TYPES``):

* the queries and device commands without parameters — ``getCashDrawerStatus``,
  ``openCashDrawer``, ``ofdExchangeStatus``, ``ismExchangeStatus``, ``getShiftTotals``,
  ``getRegistrationInfo``, ``printLastReceiptCopy`` (:class:`DeviceTask`);
* ``nonFiscal``: a text document of text and barcode items (:class:`NonFiscalTask`);
* the marking-code check of FFD 1.2: ``beginMarkingCodeValidation`` with the code
  (:class:`BeginMarkingCodeValidationTask`), then ``getMarkingCodeValidationStatus``,
  ``acceptMarkingCode`` / ``declineMarkingCode``, ``cancelMarkingCodeValidation``,
  ``clearMarkingCodeValidationResult`` (:class:`MarkingStepTask`), and ``pingIsm``
  (:class:`PingIsmTask`).

Fields are what the driver's JSON scripts read (AlexanderYekat/atolexamplesjson:
``json_nonFiscal.js``, ``json_pingIsm.js``, ``myscripts_marks.js``
``executeBeginMarkingCodeValidation``, enumerations in ``myscripts_utils.js``), checked the
way :mod:`kassa_appliance.fiscal.receipt_items` checks a receipt's parts. The models are
registered in :mod:`kassa_appliance.fiscal.receipt`'s ``Task`` union.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Literal

from pydantic import Field

from kassa_appliance.fiscal.receipt_items import (
    AtolModel,
    MeasurementUnit,
    NonFiscalItem,
    Quantity,
    choice_rule,
    text_rule,
    value_rule,
)
from kassa_appliance.fiscal.receipt_rules import RuleError, json_kind
from kassa_appliance.registers.base import IMC_TYPES

__all__ = [
    "IMC_TYPES",
    "ITEM_ESTIMATED_STATUSES",
    "MAX_IMC_LENGTH",
    "BeginMarkingCodeValidationTask",
    "DeviceTask",
    "MarkingCodeParams",
    "MarkingStepTask",
    "NonFiscalTask",
    "PingIsmTask",
    "ServiceTask",
]


ITEM_ESTIMATED_STATUSES = (
    "itemPieceSold",
    "itemDryForSale",
    "itemPieceReturn",
    "itemDryReturn",
    "itemStatusUnchanged",
)
"""``itemEstimatedStatus`` (tag 2003): ``MARKING_ESTIMATED_STATUS`` of the driver's scripts."""

MAX_IMC_LENGTH = 1024
"""A marking code in base64; the longest real codes (tobacco, 150+ characters) fit easily."""

MAX_NON_FISCAL_ITEMS = 1000
"""Bounds the paper one text document may spend."""


def check_base64(value: object) -> str:
    """A non-empty base64 string, as the driver decodes ``imc`` (``Duktape.dec("base64")``)."""
    if not isinstance(value, str):
        raise RuleError(f"expected the marking code in base64, got {json_kind(value)}")
    if not value:
        raise RuleError("is empty; expected the marking code in base64")
    if len(value) > MAX_IMC_LENGTH:
        raise RuleError(f"{len(value)} characters; expected at most {MAX_IMC_LENGTH}")
    try:
        base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RuleError(
            "is not base64; expected the scanned code encoded in base64 (GS as 0x1D)"
        ) from None
    return value


Base64Code = Annotated[str, value_rule(check_base64)]
ImcType = Annotated[str, choice_rule(IMC_TYPES)]
ItemEstimatedStatus = Annotated[str, choice_rule(ITEM_ESTIMATED_STATUSES)]


class DeviceTask(AtolModel):
    """Queries and device commands without parameters (none creates a fiscal document)."""

    type: Literal[
        "getCashDrawerStatus",
        "openCashDrawer",
        "ofdExchangeStatus",
        "ismExchangeStatus",
        "getShiftTotals",
        "getRegistrationInfo",
        "printLastReceiptCopy",
    ]


class NonFiscalTask(AtolModel):
    """A text document (``nonFiscal``): text lines and barcodes, no fiscal data."""

    type: Literal["nonFiscal"]
    items: Annotated[list[NonFiscalItem], Field(max_length=MAX_NON_FISCAL_ITEMS)]
    printFooter: bool | None = None


class MarkingCodeParams(AtolModel):
    """``params`` of ``beginMarkingCodeValidation`` (the code and its planned status)."""

    imc: Base64Code
    itemEstimatedStatus: ItemEstimatedStatus
    imcType: ImcType | None = None
    imcModeProcessing: Annotated[int, Field(ge=0, le=255)] | None = None
    itemQuantity: Quantity | None = None
    itemUnits: MeasurementUnit | None = None
    itemFractionalAmount: Annotated[str, text_rule(32)] | None = None
    """A fraction of a package such as ``"1/2"`` (tag 1291), for dry products sold by weight."""
    waitForResult: bool | None = None
    notSendToServer: bool | None = None


class BeginMarkingCodeValidationTask(AtolModel):
    """Start checking one marking code in the FN and with the ISM (Честный знак)."""

    type: Literal["beginMarkingCodeValidation"]
    params: MarkingCodeParams


class MarkingStepTask(AtolModel):
    """The later steps of a marking-code check; they take no parameters."""

    type: Literal[
        "getMarkingCodeValidationStatus",
        "acceptMarkingCode",
        "declineMarkingCode",
        "cancelMarkingCodeValidation",
        "clearMarkingCodeValidationResult",
    ]


class PingIsmTask(AtolModel):
    """Check the connection to the marking server; ``timeout`` in milliseconds."""

    type: Literal["pingIsm"]
    timeout: Annotated[int, Field(ge=0, le=600_000)] | None = None


ServiceTask = (
    DeviceTask | NonFiscalTask | BeginMarkingCodeValidationTask | MarkingStepTask | PingIsmTask
)
"""The models above, for the ``Task`` union of :mod:`kassa_appliance.fiscal.receipt`."""
