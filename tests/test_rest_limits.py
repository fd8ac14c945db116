"""The emulated portal enforces a cloud Bitrix24's REST limits (restdocs ``limits.md``):
a leaky bucket per source address (503 ``QUERY_LIMIT_EXCEEDED``, ``batch`` counted once)
at the real 2/s with a burst of 50, and the per-method operating-time block (429
``OPERATION_TIME_LIMIT``). Real HTTP over loopback, real clocks; each test is bounded to a
few seconds."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.limits import (
    ENTERPRISE,
    PRODUCER_ADDRESS,
    STANDARD,
    TEST,
    LeakyBucket,
    LimitProfile,
    OperatingTime,
    default_profile,
)

QUERY_LIMIT = {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"}
OPERATION_LIMIT = {
    "error": "OPERATION_TIME_LIMIT",
    "error_description": "Method is blocked due to operation time limit.",
}


@pytest.fixture
async def portal() -> AsyncIterator[Emulator]:
    async with Emulator(limits="standard") as emulator:  # the real 2/s, burst 50
        yield emulator


def client(source: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=source)
    return httpx.AsyncClient(timeout=10, transport=transport)


async def call(
    http: httpx.AsyncClient, hook: str, method: str = "profile", body: Any = None
) -> httpx.Response:
    return await http.post(hook + method, json=body or {})


async def statuses(http: httpx.AsyncClient, hook: str, count: int) -> list[int]:
    answers = await asyncio.gather(*(call(http, hook) for _ in range(count)))
    return [answer.status_code for answer in answers]


async def burst(http: httpx.AsyncClient, hook: str, count: int, profile: LimitProfile) -> int:
    """Send ``count`` requests at once; check that exactly the burst passed, plus what the
    bucket drained meanwhile (at most ``rate`` × the seconds it took). Returns the passes."""
    started = time.monotonic()
    answers = await asyncio.gather(*(call(http, hook) for _ in range(count)))
    drained = profile.rate * (time.monotonic() - started)
    passed = [a for a in answers if a.status_code == 200]
    assert profile.burst <= len(passed) <= profile.burst + int(drained)
    assert all(a.json() == QUERY_LIMIT for a in answers if a.status_code != 200)
    assert all(a.status_code == 503 for a in answers if a.status_code != 200)
    return len(passed)


async def test_a_burst_of_50_passes_and_the_51st_gets_503_with_bitrix24s_body(
    portal: Emulator,
) -> None:
    hook = portal.webhook_url()
    async with client() as http:
        assert await statuses(http, hook, 50) == [200] * 50
        refused = await call(http, hook)

    assert refused.status_code == 503
    assert refused.json() == QUERY_LIMIT
    assert portal.limits.stats.refused == 1


async def test_past_the_burst_the_bucket_drains_at_the_real_2_per_second(
    portal: Emulator,
) -> None:
    hook = portal.webhook_url()
    async with client() as http:
        assert await statuses(http, hook, 50) == [200] * 50
        started = time.monotonic()
        passed = 0
        refused = 0
        while time.monotonic() - started < 2.2:  # 2/s: 4 more pass in 2 s, never 8
            answer = await call(http, hook)
            if answer.status_code == 200:
                passed += 1
            else:
                assert answer.json() == QUERY_LIMIT
                refused += 1
            await asyncio.sleep(0.05)

    assert 4 <= passed <= 5
    assert refused > 10


async def test_paced_at_2_per_second_nothing_is_refused(portal: Emulator) -> None:
    hook = portal.webhook_url()
    async with client() as http:
        assert await statuses(http, hook, 50) == [200] * 50  # the burst is used up
        await asyncio.sleep(0.5)
        for _ in range(4):
            assert (await call(http, hook)).status_code == 200
            await asyncio.sleep(0.52)

    assert portal.limits.stats.refused == 0


async def test_a_batch_of_50_commands_counts_as_one_request(portal: Emulator) -> None:
    hook = portal.webhook_url()
    commands = {f"c{i}": "profile" for i in range(50)}
    async with client() as http:
        assert await statuses(http, hook, 49) == [200] * 49
        batch = await call(http, hook, "batch", {"cmd": commands})
        assert batch.status_code == 200
        assert len(batch.json()["result"]["result"]) == 50
        assert (await call(http, hook)).status_code == 503


async def test_each_source_address_has_its_own_bucket_and_clients_behind_one_share_it(
    portal: Emulator,
) -> None:
    hook = portal.webhook_url()
    async with client() as first, client() as second, client(PRODUCER_ADDRESS) as elsewhere:
        assert await statuses(first, hook, 30) == [200] * 30
        assert await statuses(second, hook, 20) == [200] * 20  # same address: same bucket
        assert (await call(second, hook)).status_code == 503
        assert (await call(first, hook)).status_code == 503
        assert await statuses(elsewhere, hook, 50) == [200] * 50

    assert portal.limits.stats.refused_by_source == {"127.0.0.1": 2}


async def test_the_enterprise_profile_allows_a_burst_of_250() -> None:
    async with Emulator(limits=ENTERPRISE) as portal:
        hook = portal.webhook_url()
        async with client() as http:
            passed = await burst(http, hook, 270, ENTERPRISE)
    assert portal.limits.stats.refused == 270 - passed
    assert (ENTERPRISE.rate, ENTERPRISE.burst) == (5.0, 250)
    assert (STANDARD.rate, STANDARD.burst) == (2.0, 50)


async def test_token_endpoint_and_controls_are_not_counted(portal: Emulator) -> None:
    hook = portal.webhook_url()
    async with client() as http:
        assert await statuses(http, hook, 50) == [200] * 50
        for _ in range(5):
            assert (await http.get(portal.url + "/_emulator/stats")).status_code == 200
        token = await http.post(portal.token_url, data={"grant_type": "refresh_token"})
        assert token.status_code != 503


# -- operating time ------------------------------------------------------------------------


def costly(window: float = 600.0) -> LimitProfile:
    """Each ``profile`` call is accounted as 100 s of execution: 5 calls pass 480 s."""
    return LimitProfile(
        "costly", rate=500.0, burst=50, operating_window=window, method_costs={"profile": 100.0}
    )


async def test_a_method_past_480_seconds_of_operating_time_is_blocked_with_429() -> None:
    async with Emulator(limits=costly()) as portal:
        hook = portal.webhook_url()
        async with client() as http:
            answers = [await call(http, hook) for _ in range(5)]
            blocked = await call(http, hook)
            other_method = await call(http, hook, "user.current")

    assert [a.status_code for a in answers] == [200] * 5
    operating = [a.json()["time"]["operating"] for a in answers]
    assert operating == sorted(operating) and 500 <= operating[-1] < 501
    reset_at = answers[0].json()["time"]["operating_reset_at"]
    assert time.time() + 590 < reset_at <= time.time() + 600
    assert blocked.status_code == 429
    assert blocked.json() == OPERATION_LIMIT
    assert other_method.status_code == 200  # other methods go on
    assert portal.limits.stats.operation_blocked == 1


async def test_in_a_batch_the_blocked_method_fails_alone_and_batch_itself_is_not_accounted() -> (
    None
):
    async with Emulator(limits=costly()) as portal:
        hook = portal.webhook_url()
        async with client() as http:
            answer = await call(
                http,
                hook,
                "batch",
                {"cmd": {f"p{i}": "profile" for i in range(6)} | {"e": "user.current"}},
            )

    body = answer.json()["result"]
    assert answer.status_code == 200
    assert sorted(body["result"]) == ["e", "p0", "p1", "p2", "p3", "p4"]
    assert body["result_error"] == {"p5": OPERATION_LIMIT}
    assert body["result_time"]["p4"]["operating"] >= 500
    assert answer.json()["time"]["operating"] == 0


async def test_the_block_lifts_when_the_oldest_baskets_leave_the_window() -> None:
    async with Emulator(limits=costly(window=2.0)) as portal:  # ten 0.2 s baskets
        hook = portal.webhook_url()
        async with client() as http:
            for _ in range(5):
                assert (await call(http, hook)).status_code == 200
            assert (await call(http, hook)).status_code == 429
            await asyncio.sleep(2.1)
            assert (await call(http, hook)).status_code == 200


async def test_operating_time_is_kept_per_application_and_per_webhook() -> None:
    async with Emulator(limits=costly()) as portal:
        first, second = portal.webhook_url(user_id=1), portal.webhook_url(user_id=2)
        async with client() as http:
            for _ in range(5):
                await call(http, first)
            assert (await call(http, first)).status_code == 429
            assert (await call(http, second)).status_code == 200


# -- profiles ------------------------------------------------------------------------------


def test_the_test_suite_runs_the_emulator_with_the_fast_test_profile_and_the_real_burst() -> None:
    assert default_profile() == TEST
    assert TEST.burst == STANDARD.burst
    assert Emulator().limits.profile == TEST


async def test_the_fast_test_profile_still_refuses_a_burst_over_50() -> None:
    async with Emulator() as portal:
        hook = portal.webhook_url()
        async with client() as http:
            codes = await statuses(http, hook, 80)
    assert codes.count(503) >= 20


async def test_limits_can_be_changed_over_the_control_endpoint(portal: Emulator) -> None:
    async with client() as http:
        answer = await http.post(
            portal.url + "/_emulator/limits", json={"profile": "enterprise", "burst": 3}
        )
        assert answer.json()["burst"] == 3
        hook = portal.webhook_url()
        assert await statuses(http, hook, 4) == [200, 200, 200, 503]
        bad = await http.post(portal.url + "/_emulator/limits", json={"profile": "gold"})
        assert bad.status_code == 400
        assert "expected one of standard, enterprise, test" in bad.json()["error_description"]
        stats = (await http.get(portal.url + "/_emulator/stats")).json()
    assert stats["limits"]["refused"] == 1


def test_the_emulator_command_takes_a_limit_profile() -> None:
    command = [sys.executable, "-m", "kassa_appliance.testbeds.bitrix24.cli", "emulator"]
    shown = subprocess.run([*command, "--help"], capture_output=True, text=True, check=True)
    assert "--limits" in shown.stdout and "enterprise" in shown.stdout
    wrong = subprocess.run([*command, "--limits", "gold"], capture_output=True, text=True)
    assert wrong.returncode == 2 and "invalid choice: 'gold'" in wrong.stderr


# -- the counters on a hand-driven clock (exact edges) ---------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_edge_exactly_50_then_one_per_half_second() -> None:
    clock = Clock()
    bucket = LeakyBucket(STANDARD.rate, STANDARD.burst, clock)
    assert [bucket.admit() for _ in range(51)] == [True] * 50 + [False]
    clock.now += 0.49
    assert not bucket.admit()
    clock.now += 0.01
    assert bucket.admit()
    assert not bucket.admit()
    clock.now += 25.0  # drained empty: the full burst again
    assert sum(bucket.admit() for _ in range(60)) == 50


def test_operating_baskets_leave_ten_minutes_after_their_first_call() -> None:
    clock = Clock()
    clock.now = 600.0 * 1000  # a minute boundary
    operating = OperatingTime(480.0, 600.0, clock)
    operating.record("app", "crm.item.list", 400.0)  # minute 0, first call at 0:00
    clock.now += 65
    operating.record("app", "crm.item.list", 100.0)  # minute 1, first call at 1:05
    assert operating.blocked("app", "crm.item.list")
    assert not operating.blocked("app", "other.method")
    assert not operating.blocked("webhook:1", "crm.item.list")
    assert operating.reset_at("app", "crm.item.list") == 600.0 * 1000 + 600
    clock.now = 600.0 * 1000 + 600  # the first basket leaves: 100 s remain
    assert operating.used("app", "crm.item.list") == 100.0
    assert not operating.blocked("app", "crm.item.list")
    assert operating.reset_at("app", "crm.item.list") == 600.0 * 1000 + 665
