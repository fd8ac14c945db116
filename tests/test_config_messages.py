"""Configuration messages speak the integrator's language: the setting by its snap name,
what is wrong, what was expected; never Python's type names, never a raw control character
or an endless value."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kassa_appliance.appliance.config import CONFIG_FILE_NAME, Config
from kassa_appliance.appliance.config_errors import describe_validation_error
from kassa_appliance.appliance.hooks.post_refresh import MigrationError, post_refresh
from kassa_appliance.appliance.hooks.settings import InvalidSettings, config_from_snap
from kassa_appliance.appliance.hooks.snapctl import Snapctl, SnapctlError

PYTHON_WORDS = re.compile(
    r"NoneType|\bstr\b|\bint\b|\bfloat\b|\bdict\b|\btuple\b|Decimal|instance of|"
    r"[A-Z][a-z]+Config|Input should|Value error"
)

BAD_DOCUMENTS: list[tuple[dict[str, Any], str]] = [
    ({"register": "x"}, "register: value is not a group of keys; expected a JSON object"),
    ({"log": None}, "log: value is not a group of keys; expected a JSON object of settings"),
    ({"register": {"task_timeout": "abc"}}, "register.task-timeout: value is not a number"),
    ({"register": {"print_delay": None}}, "register.print-delay: value is not a number"),
    ({"bitrix": {"allowed_users": [None]}}, "bitrix.allowed-users[0]: value is not a whole"),
    ({"bitrix": {"allowed_users": "x"}}, "bitrix.allowed-users: value is not a list"),
    ({"operator": {"name": 5}}, "operator.name: value is not text; expected text"),
    ({"bitrix": {"client_secret": 5}}, "bitrix.client-secret: value is not text"),
    ({"register": {"driver": 3}}, "register.driver: value is not allowed; expected one of simu"),
    ({"shift": {"auto_open": "maybe"}}, "shift.auto-open: value is not allowed; expected true"),
    ({"kassa": {"idx": 1}}, "kassa.idx: value is not a known setting"),
    (
        {"register": {"url": "http://127.0.0.1:abc"}},
        'register.url: value is not a valid URL: port "abc"',
    ),
]


@pytest.mark.parametrize(("document", "start"), BAD_DOCUMENTS)
def test_model_errors_are_described_without_python_words(
    document: dict[str, Any], start: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        Config.model_validate(document)
    lines = describe_validation_error(raised.value)
    assert len(lines) == 1 and lines[0].startswith(start), lines
    assert not PYTHON_WORDS.search(lines[0]), lines[0]


def test_post_refresh_reports_a_bad_config_file_in_snap_words(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE_NAME).write_text(
        json.dumps({"schema": 1, "register": "fptr10"}), encoding="utf-8"
    )
    with pytest.raises(MigrationError) as raised:
        post_refresh(tmp_path)
    assert "register: value is not a group of keys" in str(raised.value)
    assert not PYTHON_WORDS.search(str(raised.value).split(": ", 1)[1])


def test_long_and_unprintable_values_are_shortened_and_escaped() -> None:
    with pytest.raises(InvalidSettings) as raised:
        config_from_snap({"operator": {"name": "\x00" + "Я" * 100_000}, "kassa": {"i\nd": 1}})
    name_line, key_line = raised.value.messages
    assert name_line.startswith('operator.name: "\\x00ЯЯЯ') and "…" in name_line
    assert len(name_line) < 300 and "\x00" not in name_line
    assert key_line.startswith("kassa.i\\x0ad: unknown key")


@pytest.mark.parametrize("value", [5.5, float(2**60), True, [1], {"a": 1}])
def test_numbers_and_other_json_for_text_are_refused_in_plain_words(value: object) -> None:
    with pytest.raises(InvalidSettings) as raised:
        config_from_snap({"operator": {"vatin": value}})
    (line,) = raised.value.messages
    assert line.startswith("operator.vatin: ") and "expected" in line
    assert not PYTHON_WORDS.search(line), line


def test_snapctl_output_beyond_the_input_limits_is_an_error_not_a_traceback(
    tmp_path: Path,
) -> None:
    script = tmp_path / "snapctl"
    huge = "7" * 5000  # Python's int() refuses more than 4,300 digits
    script.write_text(
        f'#!{sys.executable}\nprint(\'{{"kassa": {{"id": {huge}}}}}\')\n', encoding="utf-8"
    )
    script.chmod(0o755)
    with pytest.raises(SnapctlError) as raised:
        Snapctl(str(script)).get_document(["kassa"])
    assert "snapctl get -d: snap settings:" in str(raised.value)
    assert "too long" in str(raised.value) and len(str(raised.value)) < 300
