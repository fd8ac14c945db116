"""Property: whatever bytes or JSON text arrive, the decoder and the receipt models answer
only with InputRejected or TaskValidationError, in short printable messages."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kassa_appliance.fiscal.receipt import TaskValidationError, parse_task
from kassa_appliance.fiscal.receipt_errors import MAX_PROBLEM_LENGTH, MAX_PROBLEMS_SHOWN
from kassa_appliance.inputs import InputRejected, decode_json_bytes, decode_json_text
from test_receipt_samples import sample_sell

MAX_MESSAGE_LENGTH = 200 + MAX_PROBLEMS_SHOWN * (MAX_PROBLEM_LENGTH + 5)
SETTINGS = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TASK_TYPES = st.sampled_from(["sell", "sellCorrection", "openShift", "cashIn", "getFnStatus"])
FIELD_NAMES = st.sampled_from(
    [
        "type",
        "items",
        "payments",
        "operator",
        "name",
        "price",
        "quantity",
        "amount",
        "tax",
        "sum",
        "total",
        "clientInfo",
        "emailOrPhone",
        "cashSum",
        "companyInfo",
        "measurementUnit",
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats()
    | st.text(max_size=30)
    | TASK_TYPES
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(FIELD_NAMES | st.text(max_size=10), children, max_size=6)
    ),
    max_leaves=40,
)


@st.composite
def tasks(draw: st.DrawFn) -> Any:
    """Mostly task-shaped objects (a known type plus random fields), some random values."""
    if draw(st.booleans()):
        return draw(JSON_VALUES)
    task: dict[str, Any] = sample_sell() if draw(st.booleans()) else {}
    task["type"] = draw(TASK_TYPES | SCALARS)
    task.update(draw(st.dictionaries(FIELD_NAMES | st.text(max_size=300), JSON_VALUES, max_size=8)))
    return task


def _assert_printable(message: str, *, lines: bool = False) -> None:
    allowed = {"\n"} if lines else set()
    controls = [
        ch for ch in message if ch not in allowed and unicodedata.category(ch) in ("Cc", "Cs")
    ]
    assert controls == [], message[:300]


def _answer(decode: Any) -> None:
    try:
        parse_task(decode())
    except InputRejected as error:
        message = str(error)
        assert len(message) <= MAX_PROBLEM_LENGTH
        _assert_printable(message)
    except TaskValidationError as error:
        message = str(error)
        assert len(message) <= MAX_MESSAGE_LENGTH
        _assert_printable(message, lines=True)
        for problem in error.problems:
            assert len(problem) <= MAX_PROBLEM_LENGTH
            _assert_printable(problem)


@SETTINGS
@given(st.binary(max_size=2000))
def test_arbitrary_bytes(data: bytes) -> None:
    _answer(lambda: decode_json_bytes(data, "task"))


@SETTINGS
@given(tasks())
def test_arbitrary_json_text(task: Any) -> None:
    text = json.dumps(task, ensure_ascii=False)
    _answer(lambda: decode_json_bytes(text.encode("utf-8", "surrogatepass"), "task"))


@SETTINGS
@given(tasks(), st.integers(min_value=0, max_value=3000), st.sampled_from(["[", '{"a":']))
def test_arbitrary_json_text_mangled(task: Any, depth: int, opener: str) -> None:
    """Deep nesting, raw surrogates, NaN and long numbers spliced into real JSON text."""
    closer = "]" if opener == "[" else "}"
    text = json.dumps(task, ensure_ascii=True)
    spliced = opener * depth + text + closer * depth
    variants = [
        spliced,
        text.replace('"', '"\\ud800', 1),
        text.replace("1", "NaN", 1),
        text.replace("0", "9" * 5000, 1),
        text[: len(text) // 2],
    ]
    for variant in variants:
        _answer(lambda v=variant: decode_json_text(v, "task"))


@SETTINGS
@given(tasks())
def test_arbitrary_decoded_values(task: Any) -> None:
    _answer(lambda: task)
