"""``bitrix.pairing``: the Kassa app's pairing code standing for the keys it carries.

:func:`pairing_values` takes the code apart (:mod:`kassa_appliance.bitrix.pairing_code`);
:func:`expand_pairing` holds each of its values to the rules of its own key (``keys``, the
hook's key table) and, when all pass, puts them in place of the code — the code wins over
the separate keys; :func:`pairing_notes` says what it replaced, for the hook's output.
Messages name the part of the code that is wrong, never a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kassa_appliance.appliance.hooks.snap_values import (
    BadValue,
    SnapKey,
    _is_unset,
    _secret,
    lookup,
    show_value,
)
from kassa_appliance.bitrix.pairing_code import PairingCodeError, decode_pairing_code


def _set_in(document: dict[str, Any], name: str, value: object) -> None:
    group, sub = name.split(".", 1)
    values = document.get(group)
    document[group] = {**(values if isinstance(values, dict) else {}), sub: value}


PAIRING_KEY = "bitrix.pairing"
PAIRING_FIELDS: Mapping[str, str] = {
    "portal": "bitrix.portal",
    "client_id": "bitrix.client-id",
    "client_secret": "bitrix.client-secret",
    "refresh_token": "bitrix.refresh-token",
    "kassa": "kassa.id",
}
"""A field of the pairing code → the ``snap set`` key whose rules it follows."""


def pairing_values(raw: object) -> dict[str, str]:
    """``bitrix.pairing`` → the raw values of the keys it stands for (not yet parsed);
    ``bitrix.refresh-token`` as ``<main>,<spare>`` when the code has a spare."""
    if not isinstance(raw, str):
        raise BadValue("is not allowed; expected the code the Kassa app's Pairing page shows")
    try:
        code = decode_pairing_code(raw)
    except PairingCodeError as error:
        raise BadValue(str(error)) from None
    tokens = code.refresh_token
    if code.spare_refresh_token is not None:
        tokens = f"{tokens},{code.spare_refresh_token}"
    return {
        "bitrix.portal": code.portal,
        "bitrix.client-id": code.client_id,
        "bitrix.client-secret": code.client_secret,
        "bitrix.refresh-token": tokens,
        "kassa.id": code.kassa,
    }


def parse_pairing(raw: object) -> object:
    """The code as a whole (its values are parsed by their own keys: config_from_snap)."""
    return pairing_values(raw)


def _pairing_field_problem(field: str, value: str, keys: Mapping[str, SnapKey]) -> str | None:
    """The reason one value of the code breaks the rules of its key, else None."""
    name = PAIRING_FIELDS.get(field, "bitrix.refresh-token")
    key = keys[name]
    try:
        if name == "bitrix.refresh-token":
            _secret(value)  # one token each; the pair is checked below
        else:
            key.parse(value)
    except BadValue as error:
        shown = "" if field in SECRET_PAIRING_FIELDS else f" {show_value(value)}"
        return f"{PAIRING_KEY}: the code's {field}{shown} {error}"
    return None


SECRET_PAIRING_FIELDS = frozenset({"client_secret", "refresh_token", "spare_refresh_token"})


def expand_pairing(
    document: Mapping[str, Any], keys: Mapping[str, SnapKey]
) -> tuple[dict[str, Any], list[str]]:
    """``document`` with a set ``bitrix.pairing`` replaced by the keys it stands for (the
    code wins over them), and the problems of the code, one line each."""
    expanded = {group: dict(v) if isinstance(v, dict) else v for group, v in document.items()}
    raw = lookup(document, PAIRING_KEY)
    if _is_unset(raw):
        return expanded, []
    bitrix = expanded.get("bitrix")
    if isinstance(bitrix, dict):
        bitrix.pop("pairing", None)
    try:
        values = pairing_values(raw)
    except BadValue as error:
        return expanded, [f"{PAIRING_KEY}: the code {error}"]
    main, _, spare = values["bitrix.refresh-token"].partition(",")
    fields = {field: values[name] for field, name in PAIRING_FIELDS.items()}
    fields["refresh_token"] = main
    if spare:
        fields["spare_refresh_token"] = spare
    problems = [
        problem
        for field, value in fields.items()
        if (problem := _pairing_field_problem(field, value, keys)) is not None
    ]
    if spare and spare == main:
        problems.append(
            f"{PAIRING_KEY}: the code's spare_refresh_token equals its refresh_token; "
            "expected a second, independent token (pair again)"
        )
    if not problems:
        for name, value in values.items():
            _set_in(expanded, name, value)
    return expanded, problems


def pairing_notes(document: Mapping[str, Any], keys: Mapping[str, SnapKey]) -> list[str]:
    """What a valid ``bitrix.pairing`` in ``document`` replaces, for the hook's output
    (values only for keys that are not secret)."""
    raw = lookup(document, PAIRING_KEY)
    if _is_unset(raw):
        return []
    values = pairing_values(raw)
    replaced: list[str] = []
    for name, value in values.items():
        before = lookup(document, name)
        if _is_unset(before) or before == value:
            continue
        key = keys[name]
        replaced.append(name if key.secret else f"{name} (was {show_value(before)})")
    note = f"{PAIRING_KEY}: applied to {', '.join(values)}; the code is not kept"
    return [note + (f"; replaced {', '.join(replaced)}" if replaced else "")]
