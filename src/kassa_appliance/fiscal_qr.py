"""The FNS receipt QR string (atol-notes §5.1), built the same way for every register backend.

``t=YYYYMMDDTHHMM&s=<sum, 2 decimals>&fn=<FN number>&i=<FD number>&fp=<fiscal sign>&n=<op>``

The fiscal sign appears without leading zeros; ``n`` is tag 1054 (1 sell, 2 sellReturn,
3 buy, 4 buyReturn; a correction receipt uses the code of its direction). Some devices print
seconds in ``t`` (``T140900``), so the parser accepts both forms.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any, TypedDict

OPERATION_CODES: Mapping[str, int] = {
    "sell": 1,
    "sellReturn": 2,
    "buy": 3,
    "buyReturn": 4,
    "sellCorrection": 1,
    "sellReturnCorrection": 2,
    "buyCorrection": 3,
    "buyReturnCorrection": 4,
}

_CENT = Decimal("0.01")
_QR_KEYS = ("t", "s", "fn", "i", "fp", "n")
_TIME_RE = re.compile(r"^(\d{8})T(\d{4})(\d{2})?$")


class ParsedQr(TypedDict):
    """The fields of a receipt QR string, typed."""

    date_time: datetime
    """Naive local time of the document as printed (the QR carries no offset)."""
    total: Decimal
    fn_number: str
    fiscal_document_number: int
    fiscal_sign: str
    operation: int


def qr_string(fiscal_params: Mapping[str, Any], operation_type: str) -> str:
    """Build the QR string of a receipt from its Atol ``fiscalParams`` and task type."""
    try:
        code = OPERATION_CODES[operation_type]
    except KeyError:
        raise ValueError(
            f"operation_type {operation_type!r} has no QR code; expected one of "
            f"{', '.join(OPERATION_CODES)}"
        ) from None
    stamp = _require(fiscal_params, "fiscalDocumentDateTime")
    try:
        moment = datetime.fromisoformat(str(stamp))
    except ValueError:
        raise ValueError(
            f"fiscalParams.fiscalDocumentDateTime {stamp!r} is not an ISO date-time"
        ) from None
    total = _money(_require(fiscal_params, "total"))
    fn_number = str(_require(fiscal_params, "fnNumber"))
    fd_number = int(_require(fiscal_params, "fiscalDocumentNumber"))
    sign = str(_require(fiscal_params, "fiscalDocumentSign")).strip()
    if not sign.isdigit():
        raise ValueError(f"fiscalParams.fiscalDocumentSign {sign!r} is not a decimal number")
    return f"t={moment:%Y%m%dT%H%M}&s={total}&fn={fn_number}&i={fd_number}&fp={int(sign)}&n={code}"


def parse_qr_string(text: str) -> ParsedQr:
    """Parse a receipt QR string; ``t`` may carry seconds. Raises ValueError naming the field."""
    fields: dict[str, str] = {}
    for part in text.strip().split("&"):
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"QR string part {part!r} is not key=value")
        fields[key] = value
    missing = [key for key in _QR_KEYS if key not in fields]
    if missing:
        raise ValueError(f"QR string lacks {', '.join(missing)}: {text!r}")
    match = _TIME_RE.match(fields["t"])
    if match is None:
        raise ValueError(f"QR field t={fields['t']!r}: expected YYYYMMDDTHHMM or YYYYMMDDTHHMMSS")
    date_time = datetime.strptime(
        match.group(1) + match.group(2) + (match.group(3) or "00"), "%Y%m%d%H%M%S"
    )
    for key in ("fn", "i", "fp", "n"):
        if not fields[key].isdigit():
            raise ValueError(f"QR field {key}={fields[key]!r}: expected digits")
    return ParsedQr(
        date_time=date_time,
        total=_money(fields["s"]),
        fn_number=fields["fn"],
        fiscal_document_number=int(fields["i"]),
        fiscal_sign=str(int(fields["fp"])),
        operation=int(fields["n"]),
    )


def _require(params: Mapping[str, Any], key: str) -> Any:
    value = params.get(key)
    if value is None:
        raise ValueError(f"fiscalParams.{key} is missing")
    return value


def _money(value: Any) -> Decimal:
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a sum of money") from None
    if not amount.is_finite():
        raise ValueError(f"{value!r} is not a sum of money")
    return amount.quantize(_CENT)
