"""Push&Pull protocol pieces without sockets: config/URL, frame parsing, back-off policy."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from kassa_appliance.bitrix.pull import BackoffPolicy, PullMessage, doorbell
from kassa_appliance.bitrix.pull_config import PullConfig, PullConfigError
from kassa_appliance.bitrix.pull_frames import parse_jsonrpc_frame, parse_text_frame

PRIV = "46a437d2336d4a88e4e9b3cd956ecf45:6221e0eb48981fce67cf4756e82e8102.7910bb25e660bf211fde"
SHARED = "fb9f7e13dc3d595c5aefe1a0216c27a2.2887eebc6ae160713a732893462dce9d8e23a7b0"
NOW = 1_775_000_000.0


@pytest.fixture
def config_answer() -> dict[str, Any]:
    """The restdocs sample answer of pull.application.config.get (ids filled in)."""
    return {
        "server": {
            "version": 4,
            "server_enabled": True,
            "mode": "personal",
            "hostname": "your-account.bitrix24.com",
            "long_polling": "https://rtc-1.bitrix24.com/sub2/",
            "long_pooling_secure": "https://rtc-1.bitrix24.com/sub2/",
            "websocket_enabled": True,
            "websocket": "wss://rtc-1.bitrix24.com/subws2/",
            "websocket_secure": "wss://rtc-1.bitrix24.com/subws2/",
            "publish_enabled": True,
            "publish": "https://rtc-1.bitrix24.com/rest/",
            "publish_secure": "https://rtc-1.bitrix24.com/rest/",
            "config_timestamp": 1774886062,
        },
        "api": {"revision_web": 19, "revision_mobile": 3},
        "channels": {
            "shared": {
                "id": SHARED,
                "start": "2026-03-31T17:05:18+02:00",
                "end": "2026-04-01T05:05:23+02:00",
                "type": "shared",
            },
            "private": {
                "id": PRIV,
                "public_id": "x",
                "start": "2026-03-31T17:05:18+02:00",
                "end": "2026-04-01T05:05:23+02:00",
                "type": "private",
            },
        },
        "exp": 1775052318,
    }


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_url_lists_private_then_shared_channel_and_revision(config_answer: dict[str, Any]) -> None:
    config = PullConfig.from_answer({"result": config_answer})  # envelope accepted too
    url = config.connection_url(None)
    assert url.startswith("wss://rtc-1.bitrix24.com/subws2/?CHANNEL_ID=")
    assert "%2F" in url and "%3A" in url  # '/' and ':' percent-encoded like the docs example
    assert query_of(url) == {"CHANNEL_ID": f"{PRIV}/{SHARED}", "revision": "19"}


def test_url_resumes_from_mid_and_carries_client_id_in_shared_mode(
    config_answer: dict[str, Any],
) -> None:
    config_answer["server"]["mode"] = "shared"
    config_answer["clientId"] = "fcda45d0859442735f07b8bb5825ded1"
    query = query_of(PullConfig.from_answer(config_answer).connection_url("1" * 26))
    assert query["mid"] == "1" * 26
    assert query["clientId"] == "fcda45d0859442735f07b8bb5825ded1"
    assert "binaryMode" not in query  # text frames


def test_shared_mode_without_client_id_is_refused(config_answer: dict[str, Any]) -> None:
    config_answer["server"]["mode"] = "shared"
    with pytest.raises(PullConfigError, match="clientId"):
        PullConfig.from_answer(config_answer)


def test_v5_uses_the_jwt_and_json_rpc(config_answer: dict[str, Any]) -> None:
    config_answer["server"]["version"] = 5
    config_answer["jwt"] = "a.b.c"
    del config_answer["channels"]["private"]
    query = query_of(PullConfig.from_answer(config_answer).connection_url(None))
    assert query == {"token": "a.b.c", "jsonRpc": "true", "revision": "19"}


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a.pop("server"), "server is missing"),
        (lambda a: a["server"].update(version="four"), "server.version must be an integer"),
        (lambda a: a["server"].update(version=2), "expected 3 or newer"),
        (lambda a: a["server"].update(websocket_secure="", websocket="http://x"), "ws://"),
        (lambda a: a.update(channels={}), "neither a private nor a shared channel"),
        (lambda a: a["channels"]["shared"].update(end="tomorrow"), r"channels.shared.end"),
        (lambda a: a["channels"]["shared"].pop("id"), r"channels.shared.id"),
        (lambda a: a["server"].update(server_enabled=False), "server_enabled is false"),
    ],
)
def test_bad_config_answers_name_the_field(
    config_answer: dict[str, Any], mutate: Any, message: str
) -> None:
    mutate(config_answer)
    with pytest.raises(PullConfigError, match=message):
        PullConfig.from_answer(config_answer)


def test_freshness_checks_timestamp_exp_and_channel_end(config_answer: dict[str, Any]) -> None:
    config = PullConfig.from_answer(config_answer)
    stamp = config.config_timestamp
    end = PullConfig.from_answer(config_answer).channels[0].end
    assert end is not None
    assert config.stale_reason(end - 1, stamp) is None
    assert "expired" in (config.stale_reason(end + 1, stamp) or "")
    assert "config_timestamp" in (config.stale_reason(end - 1, stamp + 1) or "")
    early_exp = copy.deepcopy(config_answer)
    early_exp["exp"] = int(end - 100)
    assert "exp" in (PullConfig.from_answer(early_exp).stale_reason(end - 1, stamp) or "")


def test_new_channel_replaces_only_a_known_channel(config_answer: dict[str, Any]) -> None:
    config = PullConfig.from_answer(config_answer)
    new = {"id": "a" * 32 + "." + "b" * 40, "start": "", "end": "2030-01-01T00:00:00+00:00"}
    replaced = config.with_new_channel({**new, "type": "shared"})
    assert replaced is not None
    assert query_of(replaced.connection_url(None))["CHANNEL_ID"] == f"{PRIV}/{new['id']}"
    assert config.with_new_channel({**new, "type": "some_client_id"}) is None
    assert config.with_new_channel(None) is None


def record(body: str, mid: str = "17953790650000000000000001") -> str:
    return f'#!NGINXNMS!#{{"id":1,"mid":"{mid}","channel":"-","text":{body}}}#!NGINXNME!#'


def test_text_frame_with_several_records_and_a_broken_one() -> None:
    good = '{"module_id":"Application","command":"kassa.job","params":{"job":"J","kassa":"K"}}'
    frame = record(good) + record("{broken", "17953790650000000000000002") + record(good)
    records = parse_text_frame(frame)
    assert len(records) == 3
    assert records[0].message == PullMessage(
        "application", "kassa.job", {"job": "J", "kassa": "K"}, {}, "17953790650000000000000001"
    )
    assert records[1].message is None and "not JSON" in (records[1].problem or "")
    assert records[2].message is not None


def test_old_layout_extra_next_to_text_and_php_empty_params() -> None:
    frame = (
        '#!NGINXNMS!#{"mid":"1","text":{"module_id":"pull","command":"config_expire",'
        '"params":[]},"extra":{"revision_web":19}}#!NGINXNME!#'
    )
    (only,) = parse_text_frame(frame)
    assert only.message is not None
    assert only.message.params == {} and only.message.extra == {"revision_web": 19}


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        ("plain text", "no NGINX records"),
        (record("[1]"), "expected an object"),
        (record('{"command":"x"}'), "no module_id"),
        (record('{"module_id":"a","command":"b","params":"s"}'), "params is a str"),
    ],
)
def test_malformed_text_records_are_reported_not_raised(frame: str, problem: str) -> None:
    (only,) = parse_text_frame(frame)
    assert only.message is None
    assert problem in (only.problem or "")


def test_json_rpc_incoming_message_merges_user_params_and_dictionary() -> None:
    frame = json.dumps(
        {
            "jsonrpc": "2.0",
            "method": "incoming.message",
            "params": {
                "mid": "abc123",
                "body": {"module_id": "application", "command": "kassa.job", "params": {"a": 1}},
                "sender": {"type": 2},
                "user_params": {"b": 2},
                "dictionary": {"c": 3},
            },
        }
    )
    (only,) = parse_jsonrpc_frame(frame)
    assert only.mid == "abc123"
    assert only.message is not None
    assert only.message.params == {"a": 1, "b": 2, "c": 3}
    assert only.message.extra == {"sender": {"type": 2}}
    assert parse_jsonrpc_frame('{"jsonrpc":"2.0","id":1,"result":{}}') == []
    assert parse_jsonrpc_frame("{nope")[0].problem


def test_doorbell_requires_job_and_kassa() -> None:
    assert doorbell(PullMessage("application", "kassa.job", {"job": "J", "kassa": 3})) == ("J", "3")
    assert doorbell(PullMessage("application", "kassa.job", {"job": "J"})) is None
    assert doorbell(PullMessage("application", "other", {"job": "J", "kassa": "k"})) is None


def sequence(*values: float) -> Iterator[float]:
    yield from values


def test_backoff_follows_the_jssdk_table_without_jitter() -> None:
    policy = BackoffPolicy(rng=lambda: 0.0)
    delays = [policy.delay(attempt) for attempt in range(12)]
    assert delays == [0.5, 15, 15, 45, 45, 600, 600, 600, 600, 600, 3600, 3600]


def test_backoff_jitter_adds_up_to_twenty_percent() -> None:
    draws = sequence(0.0, 0.5, 0.999)
    policy = BackoffPolicy(rng=lambda: next(draws))
    assert [policy.delay(1) for _ in range(3)] == pytest.approx([15.0, 16.5, 17.997])
    with pytest.raises(ValueError, match="attempt"):
        policy.delay(-1)
