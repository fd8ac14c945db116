"""Fields outside a task model: ignored like the driver, refused as typos, or unsupported.

The driver reads the fields it knows and ignores the rest, so real clients put their own
envelope keys next to the task (1C-Bitrix's Atol mapper cashboxbitrixv2.php adds
``timestamp``, ``external_id`` and ``zn``). At the top level of a task we do the same, with
two exceptions that protect the receipt:

* a key that looks like a misspelt field (``totl``, ``Total``, ``quanity``) is refused with
  the field it probably means: ignoring it would print a receipt without the intended value;
* a field the driver knows but the appliance cannot pass on (:data:`UNSUPPORTED_FIELDS`) is
  refused as such, never as a typo.

Inside a task (items, payments, sub-objects) unknown keys stay refused (see
:mod:`kassa_appliance.fiscal.receipt_base`), with the same suggestion.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from kassa_appliance.inputs import shorten

__all__ = [
    "UNSUPPORTED_FIELDS",
    "UNSUPPORTED_ITEM_TYPES",
    "likely_field",
    "split_top_level",
    "unsupported_message",
]

TYPO_CUTOFF = 0.8
"""difflib similarity above which an unknown key is taken for a misspelt field."""

UNSUPPORTED_FIELDS: dict[str, str] = {
    "useVAT18": "no FFD tag: VAT 18 % was replaced by 20 % on 2019-01-01",
    "ucUserParam3": "a register user parameter, no FFD tag",
    "ucUserParam4": "a register user parameter, no FFD tag",
    "ucUserParam5": "a register user parameter, no FFD tag",
    "ucUserParam6": "a register user parameter, no FFD tag",
    "overlay": "combined QR and text printing, user template 1006 of platform-5 registers",
}
"""Fields the driver's scripts know (myscripts_validators.js, myscripts_base_receipt.js)
that the appliance does not forward: each needs register-side set-up we cannot check."""

UNSUPPORTED_ITEM_TYPES: dict[str, str] = {
    "pictureFromMemory": "a picture stored in the register's memory, no FFD tag",
    "pixels": "a raster picture, no FFD tag",
}
"""Item types the driver prints that the appliance does not: they depend on pictures loaded
into the register or on the printer's raster width, which the appliance cannot check."""


def unsupported_message(where: str, name: str, what: str) -> str:
    return (
        f"{where}: Atol field {shorten(name, 40)} ({what}) is not supported by the appliance;"
        " remove it from the task"
    )


def likely_field(key: str, fields: Iterable[str]) -> str | None:
    """The known field ``key`` is probably a misspelling of, if any."""
    known = list(fields)
    for field in known:
        if field.lower() == key.lower():
            return field
    matches = difflib.get_close_matches(key, known, n=1, cutoff=TYPO_CUTOFF)
    return matches[0] if matches else None


def split_top_level(
    data: dict[str, object], fields: Iterable[str]
) -> tuple[dict[str, object], list[str]]:
    """``data`` without the keys the driver would ignore, and the problems of the others."""
    known = list(fields)
    kept: dict[str, object] = {}
    problems: list[str] = []
    for key, value in data.items():
        if key in known:
            kept[key] = value
        elif key in UNSUPPORTED_FIELDS:
            problems.append(unsupported_message(key, key, UNSUPPORTED_FIELDS[key]))
        elif (suggestion := likely_field(key, known)) is not None:
            problems.append(
                f"{shorten(key, 40)}: unknown field; did you mean {suggestion}?"
                " (other unknown top-level keys are ignored, as the driver ignores them)"
            )
    return kept, problems
