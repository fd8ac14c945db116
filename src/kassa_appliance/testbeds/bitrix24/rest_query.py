"""``entity.item.get`` FILTER and SORT semantics over emulated items.

Owns the filter operators (``=``, ``!``, ``%``, ``><``, ``>=``, ``?`` ...), the
comparison that mixes numbers and text the way the portal does, and the sort keys.
Pure functions of ``Item`` values; no REST state.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kassa_appliance.testbeds.bitrix24.state import Item


def _field_sort_key(name: str) -> Callable[[Item], tuple[int, Any]]:
    def key(item: Item) -> tuple[int, Any]:
        return _sort_key(item.field_value(name))

    return key


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, int):
        return (1, value)
    text = str(value)
    if text.lstrip("-").isdigit():
        return (1, int(text))
    return (2, text)


_OPERATORS = ("!><", "><", ">=", "<=", "!=", "!%", ">", "<", "=", "!", "%", "?")


def _compare(actual: Any, expected: Any) -> int:
    left, right = _sort_key(actual), _sort_key(expected)
    if left[0] != right[0]:
        left, right = (2, str(actual or "")), (2, str(expected or ""))
    return (left > right) - (left < right)


def _matches(item: Item, key: str, expected: Any) -> bool:
    op = next((o for o in _OPERATORS if key.startswith(o)), "=")
    name = key[len(op) :] if key.startswith(op) else key
    actual = item.field_value(name.upper())
    options = expected if isinstance(expected, list) else [expected]
    if op in {"=", "!", "!="}:
        hit = any(_compare(actual, o) == 0 for o in options)
        return hit if op == "=" else not hit
    if op in {"%", "!%"}:
        hit = any(str(o).lower() in str(actual or "").lower() for o in options)
        return hit if op == "%" else not hit
    if op in {"><", "!><"} and isinstance(expected, list) and len(expected) == 2:
        inside = _compare(actual, expected[0]) >= 0 and _compare(actual, expected[1]) <= 0
        return inside if op == "><" else not inside
    if op == "?":
        return actual not in (None, "")
    reference = options[0]
    result = _compare(actual, reference)
    return {">": result > 0, ">=": result >= 0, "<": result < 0, "<=": result <= 0}.get(op, False)
