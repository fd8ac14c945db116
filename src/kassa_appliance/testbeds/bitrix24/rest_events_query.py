"""``event.offline.get``/``.list`` FILTER and ORDER over queue rows (``rest_events``): the
operator before the field name (``>=ID``, ``!PROCESS_ID``), numbers compared as numbers,
fields the method does not filter on ignored, as b24restdocs ``events/`` describe."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kassa_appliance.testbeds.bitrix24.state import iso

if TYPE_CHECKING:
    from kassa_appliance.testbeds.bitrix24.rest_events import OfflineRow


def as_list(value: Any) -> list[Any]:
    if value is None or value == "":
        return []
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, list):
        return value
    return [value]


_OPERATORS = (">=", "<=", "!=", ">", "<", "=", "!")


def _number_or_text(value: Any) -> tuple[int, Any]:
    text = str(value)
    if text.lstrip("-").replace(".", "", 1).isdigit():
        return (0, float(text))
    return (1, text)


def matches(row: OfflineRow, filters: dict[str, Any], allowed: tuple[str, ...]) -> bool:
    for key, expected in filters.items():
        op = next((o for o in _OPERATORS if key.startswith(o)), "=")
        name = key[len(op) :].upper() if key.startswith(op) else key.upper()
        if name not in allowed:
            continue  # the portal ignores fields it does not filter on
        actual = row.value(name)
        if name == "TIMESTAMP_X" and _number_or_text(expected)[0] != 0:
            actual = iso(float(actual))
        options = [str(o) for o in as_list(expected)] or [""]
        left = _number_or_text(actual)
        hits = [left == _number_or_text(o) for o in options]
        if op == "=" and not any(hits):
            return False
        if op in {"!", "!="} and any(hits):
            return False
        if op in {">", "<", ">=", "<="}:
            right = _number_or_text(options[0])
            if left[0] != right[0]:
                left, right = (1, str(actual)), (1, options[0])
            ok = {">": left > right, "<": left < right, ">=": left >= right, "<=": left <= right}
            if not ok[op]:
                return False
    return True


def ordered(rows: list[OfflineRow], order: Any, default: str) -> list[OfflineRow]:
    spec = order if isinstance(order, dict) and order else {default: "ASC"}
    for name, direction in reversed(list(spec.items())):
        field_name = str(name).upper()

        def key(row: OfflineRow, field_name: str = field_name) -> tuple[int, Any]:
            return _number_or_text(row.value(field_name) or 0)

        rows = sorted(rows, key=key, reverse=str(direction).upper() == "DESC")
    return rows


def flag(params: dict[str, Any], name: str, default: int) -> int:
    raw = params.get(name, default)
    if raw in (None, ""):
        return default
    try:
        return 1 if int(str(raw)) else 0
    except ValueError:
        return 1 if str(raw).upper() in {"Y", "TRUE"} else 0
