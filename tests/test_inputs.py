"""The input limits (kassa_appliance.inputs) and the receipt-model door that applies them."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest

from kassa_appliance.fiscal.receipt import TaskValidationError, parse_task
from kassa_appliance.inputs import (
    MAX_DEPTH,
    MAX_KEY_LENGTH,
    MAX_NUMBER_LENGTH,
    MAX_STRING_LENGTH,
    MAX_TASK_BYTES,
    InputRejected,
    check_value,
    decode_json_bytes,
    decode_json_text,
    format_location,
    shorten,
)
from test_receipt_samples import position, receipt


def nested(depth: int) -> Any:
    value: Any = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def refused(data: bytes) -> str:
    with pytest.raises(InputRejected) as caught:
        decode_json_bytes(data, "order.json")
    return str(caught.value)


def invalid(data: object) -> str:
    with pytest.raises(TaskValidationError) as caught:
        parse_task(data)
    [problem] = caught.value.problems
    return problem


# --- shorten and locations ----------------------------------------------------------------


def test_shorten_keeps_text_that_fits_exactly() -> None:
    assert shorten("x" * 60, 60) == "x" * 60
    assert shorten("x" * 61, 60) == "x" * 59 + "…"


def test_shorten_escapes_controls_invisible_characters_and_surrogates() -> None:
    assert shorten("a\x00b\n\u202e\ud800\U000e0001") == "a\\x00b\\x0a\\u202e\\ud800\\U000e0001"


def test_shorten_never_cuts_inside_an_escape() -> None:
    assert shorten("ab\x00", 5) == "ab…"


def test_shorten_works_on_huge_text_quickly() -> None:
    assert shorten("\x00" * 10_000_000, 10) == "\\x00\\x00…"


def test_locations_shorten_and_escape_field_names() -> None:
    assert format_location(("items", 0, "name")) == "items[0].name"
    assert format_location(("a\x00" + "b" * 100,)) == "a\\x00" + "b" * 34 + "…"


# --- decoding bytes ------------------------------------------------------------------------


def test_utf8_with_and_without_byte_order_mark_decodes() -> None:
    assert decode_json_bytes('{"a": "ы"}'.encode()) == {"a": "ы"}
    assert decode_json_bytes(b"\xef\xbb\xbf" + '{"a": "ы"}'.encode()) == {"a": "ы"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"a": "\xff"}', "order.json: byte 7 (0xff) is not valid UTF-8; expected UTF-8 text"),
        ('{"a": 1}'.encode("utf-16"), "order.json: the text is UTF-16 encoded; expected UTF-8"),
        ('{"a": 1}'.encode("utf-16-le"), "order.json: the text is UTF-16 or UTF-32 encoded"),
        ('{"a": 1}'.encode("utf-32"), "order.json: the text is UTF-32 encoded; expected UTF-8"),
        (b"[" * 5000 + b"]" * 5000, "order.json: nested far deeper than 32 levels"),
        (b"[" * 40 + b"]" * 40, "order.json, [0][0][0]"),
        (b'{"a": ' + b"9" * 5000 + b"}", "a number of 5,000 characters (" + "9" * 19 + "…)"),
        (b'{"a": NaN}', "order.json: NaN is not a JSON number; expected a finite number"),
        (b'{"a": -Infinity}', "order.json: -Infinity is not a JSON number"),
        (b'{"a": 1e999}', "order.json: the number 1e999 is out of range"),
        (b'{"a": "\\ud800"}', "order.json, a: the text holds \\ud800 at character 0"),
        (b'{"\\udfff": 1}', "order.json: the field name holds \\udfff at character 0"),
        (b'{"type": "sell",', "order.json: not valid JSON (line 1, column 17"),
        (b"", "order.json: not valid JSON (line 1, column 1: Expecting value)"),
        (b" " * (MAX_TASK_BYTES + 1), "order.json: 1,048,577 bytes is too large"),
    ],
    ids=[
        "not utf-8",
        "utf-16 bom",
        "utf-16 no bom",
        "utf-32",
        "5000 deep",
        "40 deep",
        "5000 digits",
        "nan",
        "infinity",
        "overflow",
        "lone surrogate",
        "surrogate key",
        "truncated",
        "empty",
        "too big",
    ],
)
def test_bad_bytes_are_refused_with_a_clear_message(data: bytes, expected: str) -> None:
    message = refused(data)
    assert message.startswith(expected) or expected in message
    assert "\n" not in message and len(message) < 400


# --- limits on decoded values ---------------------------------------------------------------


def test_limits_are_inclusive() -> None:
    check_value(nested(MAX_DEPTH))
    check_value({"k" * MAX_KEY_LENGTH: "v" * MAX_STRING_LENGTH, "n": 10 ** (MAX_NUMBER_LENGTH - 1)})
    decode_json_text(json.dumps(nested(MAX_DEPTH)))
    decode_json_text('{"n": ' + "9" * MAX_NUMBER_LENGTH + "}")


def test_decimal_numbers_as_decoded_with_parse_float_are_json_numbers() -> None:
    check_value({"sum": Decimal("100.50")})
    with pytest.raises(InputRejected, match="expected a finite number"):
        check_value({"sum": Decimal("NaN")})
    with pytest.raises(InputRejected, match="too long"):
        check_value({"sum": Decimal("1" * 50)})


def test_a_python_value_that_json_cannot_hold_is_named_as_such() -> None:
    with pytest.raises(InputRejected) as caught:
        check_value({"when": object()})
    assert str(caught.value) == (
        "task, when: not a JSON value;"
        " expected text, a number, true, false, null, an object or a list"
    )


# --- the receipt-model door -----------------------------------------------------------------


def test_parse_task_refuses_a_pass_through_field_nested_600_deep() -> None:
    problem = invalid(receipt(companyInfo=nested(600)))
    assert problem.startswith("task, companyInfo.a.a.a")
    assert "nested 33 levels deep; expected at most 32 levels of objects and lists" in problem


def test_parse_task_refuses_a_task_nested_deeper_than_python_can_recurse() -> None:
    problem = invalid(receipt(agentInfo=nested(100_000)))
    assert "nested 33 levels deep" in problem


def test_parse_task_refuses_a_lone_surrogate() -> None:
    problem = invalid(receipt(items=[position(name="Чай \ud800")]))
    assert problem.startswith("task, items[0].name: the text holds \\ud800 at character 4")
    assert "\ud800" not in problem


def test_parse_task_refuses_an_integer_of_5000_digits() -> None:
    problem = invalid(receipt(items=[position(price=10**5000)]))
    assert problem == (
        "task, items[0].price: the number is too long; expected at most 40 characters"
    )


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_parse_task_refuses_numbers_json_does_not_have(value: float) -> None:
    problem = invalid(receipt(items=[position(price=value)]))
    assert problem.startswith("task, items[0].price: ")
    assert problem.endswith("is not a finite number; expected a finite number")


def test_parse_task_refuses_a_huge_string_before_looking_at_fields() -> None:
    problem = invalid(receipt(paymentsPlace="\x00" * (MAX_STRING_LENGTH + 1)))
    assert problem == (
        "task, paymentsPlace: a text of 65,537 characters (\\x00\\x00\\x00\\x00…) is too long;"
        " expected at most 65,536"
    )
