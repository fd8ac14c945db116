"""The Bitrix24 REST client against the loopback portal emulator (real HTTP, real files)."""

from __future__ import annotations

import asyncio
import json
import logging
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bitrix_support import FAST_RETRY, oauth_client, oauth_credentials
from kassa_appliance.bitrix.auth import OAuthAuth, TokenFile, WebhookAuth
from kassa_appliance.bitrix.errors import (
    AccessDenied,
    AlreadyExists,
    NotFound,
    PairingLost,
    RateLimited,
    ServerError,
)
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.testbeds.bitrix24.app import Emulator


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    async with Emulator() as running:
        yield running


@pytest.fixture
def token_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "tokens.json"


async def test_concurrent_callers_hitting_an_expired_token_share_one_refresh(
    emulator: Emulator, token_path: Path
) -> None:
    async with oauth_client(emulator, token_path) as rest:
        await rest.result("profile")
        assert emulator.state.refresh_count == 1
        emulator.state.expire_access_tokens()
        answers = await asyncio.gather(*(rest.result("profile") for _ in range(20)))
    assert all(answer["ID"] == "1" for answer in answers)
    assert emulator.state.refresh_count == 2


async def test_the_rotated_refresh_token_is_persisted_0600_before_the_new_access_token_is_used(
    emulator: Emulator, token_path: Path
) -> None:
    pairing = emulator.credentials()
    seen_at_persist: dict[str, object] = {}

    async def inspect_disk() -> None:
        data = json.loads(token_path.read_text())
        seen_at_persist["file"] = data
        seen_at_persist["mode"] = stat.S_IMODE(token_path.stat().st_mode)
        seen_at_persist["calls"] = dict(emulator.api.calls)

    async with oauth_client(
        emulator, token_path, pairing=pairing, after_persist=inspect_disk
    ) as rest:
        await rest.result("app.info")
    stored = seen_at_persist["file"]
    assert isinstance(stored, dict)
    assert seen_at_persist["mode"] == 0o600
    assert seen_at_persist["calls"] == {}, "the new access token was used before it was saved"
    assert stored["refresh_token"] != pairing["refresh_token"]
    assert stored["refresh_token"] in emulator.state.refresh_tokens
    assert pairing["refresh_token"] not in emulator.state.refresh_tokens  # single-use
    assert pairing["refresh_token"] not in token_path.read_text()


async def test_the_token_file_wins_until_the_configured_refresh_token_changes(
    emulator: Emulator, token_path: Path
) -> None:
    pairing = emulator.credentials()
    async with oauth_client(emulator, token_path, pairing=pairing) as rest:
        await rest.result("profile")
    # Restart with the same (now used up) configured token: the file's chain is used.
    async with oauth_client(emulator, token_path, pairing=pairing) as rest:
        emulator.state.expire_access_tokens()
        assert (await rest.result("profile"))["ID"] == "1"
    # The admin re-pairs with a token for another user: the configured token wins.
    repaired = emulator.credentials(user_id=2)
    async with oauth_client(emulator, token_path, pairing=repaired) as rest:
        assert (await rest.result("profile"))["ID"] == "2"
    assert json.loads(token_path.read_text())["user_id"] == 2


async def test_a_used_up_refresh_token_means_pairing_lost_with_a_clear_message(
    emulator: Emulator, token_path: Path
) -> None:
    pairing = emulator.credentials()
    emulator.state.rotate(pairing["refresh_token"])  # someone else used it
    async with oauth_client(emulator, token_path, pairing=pairing) as rest:
        with pytest.raises(PairingLost, match="pair the appliance again"):
            await rest.result("profile")


async def test_a_503_storm_is_ridden_out_with_growing_jittered_back_off(
    emulator: Emulator, token_path: Path
) -> None:
    delays: list[float] = []

    async def record(delay: float) -> None:
        delays.append(delay)

    async with oauth_client(emulator, token_path) as rest:
        await rest.result("profile")
        rest._sleep = record  # observe the back-off without waiting for it
        emulator.faults.add("rate_limit", count=8)
        assert (await rest.result("profile"))["ID"] == "1"
    assert emulator.faults.fired["rate_limit"] == 8
    assert len(delays) == 8
    assert delays[-1] > delays[0]


async def test_a_storm_longer_than_the_budget_raises_rate_limited(
    emulator: Emulator, token_path: Path
) -> None:
    async with oauth_client(emulator, token_path) as rest:
        emulator.faults.add("rate_limit", count=None, methods=["profile"])
        with pytest.raises(RateLimited, match="QUERY_LIMIT_EXCEEDED"):
            await rest.result("profile")


async def test_5xx_and_dropped_connections_are_retried_a_bounded_number_of_times(
    emulator: Emulator, token_path: Path
) -> None:
    async with oauth_client(emulator, token_path) as rest:
        await rest.result("profile")
        emulator.faults.add("error500", count=2)
        emulator.faults.add("drop", count=1)
        assert (await rest.result("profile"))["ID"] == "1"
        emulator.faults.add("error500", count=None, methods=["app.info"])
        with pytest.raises(ServerError, match="INTERNAL_SERVER_ERROR"):
            await rest.result("app.info")
    assert emulator.faults.fired["drop"] == 1
    assert emulator.faults.fired["error500"] == 2 + FAST_RETRY.attempts


async def test_other_4xx_fail_fast_with_bitrix_s_message(
    emulator: Emulator, token_path: Path
) -> None:
    async with oauth_client(emulator, token_path) as rest:
        with pytest.raises(
            NotFound, match=r"entity\.get: .*ERROR_ENTITY_NOT_FOUND.*Entity not found"
        ):
            await rest.result("entity.get", {"ENTITY": "NOPE"})
        await rest.result("entity.add", {"ENTITY": "DUP", "NAME": "dup"})
        with pytest.raises(AlreadyExists, match="Entity already exists"):
            await rest.result("entity.add", {"ENTITY": "DUP", "NAME": "dup"})
    assert emulator.api.calls["entity.get"] == 1
    assert emulator.api.calls["entity.add"] == 2


async def test_batch_splits_more_than_50_commands_and_keeps_order_and_errors(
    emulator: Emulator, token_path: Path
) -> None:
    async with oauth_client(emulator, token_path) as rest:
        await rest.result("entity.add", {"ENTITY": "BOX", "NAME": "box"})
        await rest.result("entity.item.property.add", {"ENTITY": "BOX", "PROPERTY": "N"})
        commands = [
            ("entity.item.add", {"ENTITY": "BOX", "NAME": f"item-{i}", "PROPERTY_VALUES": {"N": i}})
            for i in range(120)
        ]
        commands.insert(60, ("entity.item.add", {"ENTITY": "MISSING", "NAME": "x"}))
        batch_calls_before = emulator.api.calls.get("batch", 0)
        items = await rest.batch(commands)
        assert len(items) == 121
        assert isinstance(items[60].error, NotFound)
        assert all(item.error is None for i, item in enumerate(items) if i != 60)
        stored = await rest.list_all("entity.item.get", {"ENTITY": "BOX"})
    assert emulator.api.calls.get("batch", 0) - batch_calls_before == 0  # counted per method
    assert emulator.api.calls["entity.item.add"] == 121
    assert [s["NAME"] for s in stored] == [f"item-{i}" for i in range(120)]
    assert [s["PROPERTY_VALUES"]["N"] for s in stored[:3]] == ["0", "1", "2"]


async def test_list_all_follows_next_across_pages_with_filter_and_sort(
    emulator: Emulator, token_path: Path
) -> None:
    async with oauth_client(emulator, token_path) as rest:
        await rest.result("entity.add", {"ENTITY": "PAGES", "NAME": "pages"})
        await rest.result("entity.item.property.add", {"ENTITY": "PAGES", "PROPERTY": "K"})
        await rest.batch(
            [
                (
                    "entity.item.add",
                    {"ENTITY": "PAGES", "NAME": f"{i:03}", "PROPERTY_VALUES": {"K": i % 3}},
                )
                for i in range(160)
            ]
        )
        first = await rest.call(
            "entity.item.get", {"ENTITY": "PAGES", "FILTER": {"PROPERTY_K": ["0", "1"]}}
        )
        wanted = await rest.list_all(
            "entity.item.get",
            {"ENTITY": "PAGES", "FILTER": {"PROPERTY_K": ["0", "1"]}, "SORT": {"NAME": "DESC"}},
        )
    assert first.total == 107 and first.next == 50 and len(first.result) == 50
    assert len(wanted) == 107
    assert wanted[0]["NAME"] == "159" and wanted[-1]["NAME"] == "000"


async def test_no_token_or_secret_reaches_the_logs_through_a_refresh_cycle(
    emulator: Emulator, token_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pairing = emulator.credentials()
    webhook = emulator.webhook_url()
    async with oauth_client(emulator, token_path, pairing=pairing) as rest:
        await rest.result("profile")
        emulator.state.expire_access_tokens()
        await asyncio.gather(*(rest.result("profile") for _ in range(3)))
        emulator.faults.add("error500", count=1)
        await rest.result("profile")
        with pytest.raises(NotFound) as failure:
            await rest.result("entity.get", {"ENTITY": "NOPE"})
    async with RestClient(WebhookAuth(webhook), retry=FAST_RETRY) as hook_rest:
        await hook_rest.result("profile")
    secrets = {
        pairing["client_secret"],
        pairing["refresh_token"],
        webhook.rstrip("/").rsplit("/", 1)[1],
        *emulator.state.access_tokens,
        *emulator.state.refresh_tokens,
    }
    assert emulator.state.refresh_count == 2
    logged = caplog.text + str(failure.value) + repr(oauth_credentials(pairing))
    assert "HTTP Request" in caplog.text  # httpx did log its requests, redacted
    for secret in secrets:
        assert secret not in logged


async def test_a_webhook_reaches_rest_but_app_only_methods_are_refused(
    emulator: Emulator,
) -> None:
    async with RestClient(WebhookAuth(emulator.webhook_url(user_id=2)), retry=FAST_RETRY) as rest:
        assert (await rest.result("profile"))["ID"] == "2"
        with pytest.raises(AccessDenied, match="Application context required"):
            await rest.result("entity.get", {"ENTITY": "KASSAJOB"})
        for method in ("pull.application.config.get", "pull.application.event.add"):
            with pytest.raises(AccessDenied, match="only for application authorization"):
                await rest.result(method, {"COMMAND": "kassa.job"})


async def test_a_corrupt_token_file_is_a_clear_error(emulator: Emulator, token_path: Path) -> None:
    token_path.parent.mkdir(parents=True)
    token_path.write_text("{not json")
    with pytest.raises(ValueError, match=r"tokens\.json is not valid"):
        OAuthAuth(oauth_credentials(emulator.credentials()), TokenFile(token_path))
