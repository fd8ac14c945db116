"""The MAX Bot API emulator itself: the token check, its errors in the schema's shape, body
limits, a fuzz test of ``POST /messages``, the schema check catching what is wrong, and the
``kassa-appliance max-emulator`` command."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import maxapi_schema
from kassa_appliance.testbeds.maxapi.cli import TOKEN_ENV
from maxbot_support import TOKEN, Emulator, max_emulator

__all__ = ["max_emulator"]


def test_the_token_is_checked_in_the_authorization_header(max_emulator: Emulator) -> None:
    url = max_emulator.url
    missing = httpx.get(f"{url}/me", timeout=5)
    assert missing.status_code == 401 and missing.json()["code"] == "verify.token"
    wrong = httpx.get(f"{url}/me", headers={"Authorization": "nope"}, timeout=5)
    assert wrong.status_code == 401 and wrong.json()["message"] == "Invalid access_token"
    bearer = httpx.get(f"{url}/me", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert bearer.status_code == 401
    query = httpx.get(f"{url}/me", params={"access_token": TOKEN}, timeout=5)
    assert query.status_code == 403 and query.json()["code"] == "deprecated.token"
    good = httpx.get(f"{url}/me", headers={"Authorization": TOKEN}, timeout=5)
    assert good.status_code == 200 and good.json()["is_bot"] is True
    for exchange in max_emulator.traffic():
        if exchange["authorized"]:
            assert maxapi_schema.exchange_errors(exchange) == []
        assert (
            maxapi_schema.schema_errors(
                {"$ref": "#/components/schemas/Error"}, exchange["response_json"]
            )
            == []
            or exchange["status"] == 200
        )


def test_the_schema_check_can_fail(max_emulator: Emulator) -> None:
    base: dict[str, Any] = {
        "kind": "api",
        "method": "POST",
        "path": "/messages",
        "query": [["chat_id", "5"]],
        "authorized": True,
        "request_json": {"text": "hi"},
        "status": 200,
        "response_json": {
            "message": {
                "recipient": {"chat_id": 5, "chat_type": "dialog"},
                "timestamp": 1,
                "body": {"mid": "mid.1", "seq": 1, "text": "hi"},
            }
        },
    }
    assert maxapi_schema.exchange_errors(base) == []
    wrong = [
        {**base, "authorized": False},
        {**base, "query": [["chat_id", "five"]]},
        {**base, "query": [["chat_id", "5"], ["v", "0.1.2"]]},
        {**base, "request_json": {"text": "x" * 4001}},
        {**base, "request_json": {"attachments": [{"type": "image"}]}},
        {**base, "request_json": {"attachments": [{"type": "photo", "payload": {}}]}},
        {**base, "response_json": {"message": {"timestamp": 1}}},
        {**base, "status": 429, "response_json": {"error": "slow down"}},
        {**base, "method": "GET", "path": "/messagez"},
        {**base, "path": "/answers", "query": [], "request_json": {}},
    ]
    for exchange in wrong:
        assert maxapi_schema.exchange_errors(exchange) != [], exchange


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
BODIES = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {},
        optional={
            "text": st.one_of(st.none(), st.text(max_size=50), st.integers()),
            "format": st.sampled_from([None, "markdown", "html", "md", 1]),
            "attachments": st.lists(
                st.fixed_dictionaries(
                    {"type": st.sampled_from(["image", "inline_keyboard", "file", "x"])},
                    optional={"payload": JSON},
                ),
                max_size=3,
            )
            | JSON,
        },
    ),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=BODIES)
def test_fuzzed_message_bodies_get_a_documented_answer(max_emulator: Emulator, body: Any) -> None:
    chat_id = max_emulator.write("hi")["chat_id"]
    max_emulator.faults(enforce_rate_limits=False)
    response = httpx.post(
        f"{max_emulator.url}/messages",
        params={"chat_id": chat_id},
        json=body,
        headers={"Authorization": TOKEN},
        timeout=5,
    )
    assert response.status_code in (200, 400)
    exchange = max_emulator.traffic()[-1]
    if response.status_code == 200:
        assert maxapi_schema.exchange_errors(exchange) == []
    else:
        assert maxapi_schema.component_errors("Error", response.json()) == []


def test_bodies_over_the_limit_are_refused(max_emulator: Emulator) -> None:
    response = httpx.post(
        f"{max_emulator.url}/messages",
        params={"chat_id": 1},
        content=b"{" + b" " * (9 * 1024 * 1024) + b"}",
        headers={"Authorization": TOKEN, "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == 413


def test_the_cli_command_serves_the_emulator() -> None:
    env = {**os.environ, TOKEN_ENV: TOKEN}
    process = subprocess.Popen(
        [sys.executable, "-m", "kassa_appliance", "max-emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "max-emulator listening on http://127.0.0.1:" in line
        url = line.rsplit(" ", 1)[1].strip()
        me = httpx.get(f"{url}/me", headers={"Authorization": TOKEN}, timeout=10)
        assert me.status_code == 200
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0


def test_the_cli_command_wants_a_token() -> None:
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    result = subprocess.run(
        [sys.executable, "-m", "kassa_appliance", "max-emulator"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 2 and TOKEN_ENV in result.stdout


@pytest.mark.parametrize("fault", ["rate_limited", "unavailable"])
def test_fault_answers_have_the_error_shape(max_emulator: Emulator, fault: str) -> None:
    max_emulator.faults(**{fault: 1})
    response = httpx.get(f"{max_emulator.url}/me", headers={"Authorization": TOKEN}, timeout=5)
    assert response.status_code == (429 if fault == "rate_limited" else 503)
    assert maxapi_schema.exchange_errors(max_emulator.traffic()[-1]) == []
