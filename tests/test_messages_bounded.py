"""Validation messages stay short, printable and in the integrator's words whatever the task.

A validation error travels: into the journal, onto the CLI's screen and back to Bitrix24 in
a write-back batch the portal refuses when it is too large. So a message is capped per
problem and in the number of problems, quotes offending values shortened and escaped, and
never speaks pydantic's or Python's language ("Input should be …", ``input_value=``,
``NoneType``).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from kassa_appliance.fiscal.receipt import TaskValidationError, parse_task
from kassa_appliance.fiscal.receipt_errors import MAX_PROBLEM_LENGTH, MAX_PROBLEMS_SHOWN
from kassa_appliance.fiscal.receipt_rules import shown
from test_receipt_samples import position, receipt, sample_sell

CUT_ESCAPE = re.compile(r"\\(x[0-9a-f]?|u[0-9a-f]{0,3}|U[0-9a-f]{0,7})…")
"""An escape such as ``\\x00`` cut in the middle by a shortened value."""


def problems_of(data: object) -> TaskValidationError:
    with pytest.raises(TaskValidationError) as caught:
        parse_task(data)
    return caught.value


def _garbage_task() -> dict[str, Any]:
    """About 256 KB: 100 positions, each with bad values and many unknown fields whose
    names are long and hold NULs and other control characters."""
    items = []
    for index in range(100):
        item = position(price="1\x00" * 200, quantity=[None] * 50, tax={"type": "\x00" * 300})
        for extra in range(10):
            item[f"{index}-{extra}-" + "\x00\x07\u202e" * 80] = "\x00" * 100
        items.append(item)
    task = receipt(items=items, payments=[{"type": "cash\x00" * 50, "sum": "x" * 1000}])
    for extra in range(50):
        task[f"junk{extra}" + "\x00" * 240] = {"deep": "\x00" * 2000}
    return task


def test_a_256_kb_task_full_of_errors_gives_a_short_printable_specific_message() -> None:
    task = _garbage_task()
    assert len(json.dumps(task)) > 250_000

    error = problems_of(task)
    text = str(error)

    assert len(text) < 25_000
    assert "\x00" not in text and "\x07" not in text and "\u202e" not in text
    assert not CUT_ESCAPE.search(text), CUT_ESCAPE.search(text)
    assert all(len(problem) <= MAX_PROBLEM_LENGTH for problem in error.problems)
    assert len(error.problems) > 1000  # every problem is kept, each one short
    lines = text.splitlines()
    assert lines[0] == f"invalid task ({len(error.problems):,} problems):"
    assert len(lines) == 1 + MAX_PROBLEMS_SHOWN + 1
    assert lines[-1] == f"  … and {len(error.problems) - MAX_PROBLEMS_SHOWN:,} more problems"
    # The first problems still say exactly what is wrong where.
    assert lines[1].startswith("  - items[0].price: '1\\x001\\x00")
    assert "is a string; expected a JSON number such as 12.34" in lines[1]
    assert any(
        line.startswith("  - items[0].quantity: expected a number, got a list") for line in lines
    )


def test_unknown_field_names_are_shown_shortened_and_escaped() -> None:
    name = "prise\x00" + "ы" * 200
    [problem] = problems_of(receipt(items=[{**position(), name: 1}])).problems

    assert problem.startswith("items[0].prise\\x00ыыы")
    assert "…: unknown field; expected one of type, name, price" in problem
    assert len(problem) < 600


def test_a_field_name_of_100000_characters_is_refused_at_the_door_in_a_short_message() -> None:
    error = problems_of(receipt(**{"\x00" * 100_000: 1}))

    assert len(str(error)) < 300
    assert "\x00" not in str(error)
    assert "field name of 100,000 characters" in str(error)


def test_a_single_huge_problem_is_cut_to_the_cap() -> None:
    error = TaskValidationError(["items[0].name: " + "x" * 100_000])

    assert len(error.problems[0]) == MAX_PROBLEM_LENGTH
    assert error.problems[0].endswith("…")


def test_twenty_problems_are_listed_in_full_and_no_more() -> None:
    twenty = TaskValidationError([f"p{i}: wrong" for i in range(20)])
    twenty_one = TaskValidationError([f"p{i}: wrong" for i in range(21)])

    assert "more problems" not in str(twenty) and "p19: wrong" in str(twenty)
    assert str(twenty_one).endswith("  - p19: wrong\n  … and 1 more problem")


def test_a_raw_control_character_in_a_problem_is_escaped() -> None:
    error = TaskValidationError(["name: bad\nvalue\x00"])

    assert error.problems == ["name: bad\\x0avalue\\x00"]


# --- no Python or pydantic words ------------------------------------------------------------

WRONG_VALUES: list[object] = [
    None,
    [],
    [None, "x", 1],
    {},
    {"a": None},
    True,
    False,
    10**39,
    -(10**39),
    1.5,
    -1,
    0,
    "",
    "x",
    "\x00",
    Decimal("1e30"),
]

PYTHON_WORDS = re.compile(
    r"\b(NoneType|None|True|False|str|int|dict|float|bool|tuple|Decimal)\b"
    r"|Input should|input_value|input_type|type=|\{'|\['"
)


def _every_field_filled() -> dict[str, Any]:
    task = sample_sell()
    task["clientInfo"].update(
        name="Иванов",
        vatin="7707083893",
        birthDate="01.01.2000",
        citizenship="643",
        identityDocumentCode="21",
        identityDocumentData="4500 123456",
        address="Москва",
    )
    task["items"][0].update(
        infoDiscountAmount=0,
        department=1,
        piece=True,
        nomenclatureCode="x",
        imcParams={"imc": "x"},
        industryInfo=[{}],
        agentInfo={},
        supplierInfo={},
        additionalAttribute="a",
        additionalAttributePrint=True,
        exciseSum=0,
        countryCode="643",
        customsDeclaration="1",
    )
    task["items"].append(
        {
            "type": "barcode",
            "barcode": "1",
            "barcodeType": "QR",
            "alignment": "left",
            "scale": 1,
            "height": 1,
            "printText": True,
        }
    )
    text = {
        "type": "text",
        "text": "x",
        "wrap": "none",
        "font": 1,
        "doubleWidth": True,
        "doubleHeight": True,
        "storeInJournal": True,
    }
    task.update(
        taxes=[{"type": "none", "sum": 0}],
        preItems=[text],
        postItems=[dict(text)],
        companyInfo={},
        agentInfo={},
        supplierInfo={},
        validateMarkingCodes=True,
        paymentsPlace="x",
        machineNumber="1",
    )
    return task


def _paths(value: Any, path: tuple[str | int, ...] = ()) -> Iterator[tuple[str | int, ...]]:
    if path:
        yield path
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _paths(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _paths(child, (*path, index))


def _with(task: dict[str, Any], path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    changed = copy.deepcopy(task)
    parent: Any = changed
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    return changed


def test_wrong_typed_values_in_every_field_get_messages_in_json_words() -> None:
    base = _every_field_filled()
    parse_task(base)  # the base is valid: every problem below comes from one wrong value
    messages: set[str] = set()
    for path in _paths(base):
        for value in WRONG_VALUES:
            try:
                parse_task(_with(base, path, value))
            except TaskValidationError as error:
                messages.update(error.problems)
                messages.add(str(error))
    for task_type in ("openShift", "cashIn", "getLastFiscalParams", "sellCorrection"):
        for field in ("operator", "cashSum", "forReceipt", "correctionType", "type", "x"):
            for value in WRONG_VALUES:
                try:
                    parse_task({"type": task_type, field: value})
                except TaskValidationError as error:
                    messages.update(error.problems)

    assert len(messages) > 300
    python_speak = sorted(m for m in messages if PYTHON_WORDS.search(m))
    assert python_speak == []


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        (None, "got null"),
        (True, "got true"),
        ([1, "x"], "got a list"),
        ({"a": 1}, "got an object"),
        (15, "got a number"),
    ],
)
def test_an_item_type_that_is_not_text_is_named_as_json(tag: object, expected: str) -> None:
    [problem] = problems_of(receipt(items=[position(), {"type": tag}])).problems

    assert problem == (
        "items[1].type: expected one of position, text, barcode, userAttribute,"
        f" additionalAttribute, {expected}"
    )


def test_an_out_of_range_boolean_is_shown_as_json() -> None:
    data = receipt(items=[position(), {"type": "barcode", "barcode": "1", "barcodeType": "QR"}])
    data["items"][1]["scale"] = False
    [problem] = problems_of(data).problems

    assert problem == "items[1].scale: expected an integer, got false"


def test_an_offending_value_is_quoted_escaped_and_never_cut_inside_an_escape() -> None:
    assert shown("\x00" * 100) == "'" + "\\x00" * 9 + "…"
    assert shown("x" * 38) == "'" + "x" * 38 + "'"
    assert shown("x" * 39) == "'" + "x" * 37 + "…"
    assert shown("ab…") == "'ab…'"
    assert shown(None) == "null" and shown(False) == "false" and shown([1]) == "a list"
