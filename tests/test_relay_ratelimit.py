"""The per-tenant rate limit holds across relay instances (``kassa_rates`` in JetStream):
two real relays flooded for one tenant grant together no more than the tenant's allowance
per window, another tenant is not slowed down, and with the bus gone the relay fails
closed (503 + Retry-After)."""

from __future__ import annotations

import asyncio
import math
import time
from collections import Counter
from pathlib import Path

import httpx

from relay_cluster import RELAY_PASSWORD, NatsCluster, RelayProcess, relay_cli, start_relays

RATE = 10
"""The tenants' own ``--rate``; the relays run with ``--burst 10``: 10 requests per 1 s window."""
FLOOD_SECONDS = 3.0
CONCURRENCY_PER_RELAY = 4
BODY = b"uuid=rate-test&type=sell"
"""No cashbox settings: a request past the limit is answered 200 with ERRORS, never printed."""
FORM = {"content-type": "application/x-www-form-urlencoded"}


def add_tenant(cluster: NatsCluster, tmp_path: Path, tenant: str) -> None:
    password = tmp_path / "relay-nats-password"
    done = relay_cli(
        cluster, "tenant", "add", tenant, "--name", tenant, "--rate", str(RATE),
        password_file=password,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


async def flood(
    client: httpx.AsyncClient,
    relays: list[RelayProcess],
    tenant: str,
    until: float,
    accepted_at: list[tuple[float, float]],
) -> list[int]:
    statuses: list[int] = []

    async def worker(relay: RelayProcess) -> None:
        while time.time() < until:
            sent = time.time()
            answer = await client.post(
                f"{relay.url}/b24/{tenant}/print", content=BODY, headers=FORM
            )
            statuses.append(answer.status_code)
            if answer.status_code == 200:
                accepted_at.append((round(sent, 3), round(time.time(), 3)))
            if answer.status_code == 429:
                assert int(answer.headers["Retry-After"]) >= 1

    await asyncio.gather(*(worker(r) for r in relays for _ in range(CONCURRENCY_PER_RELAY)))
    return statuses


async def trickle(
    client: httpx.AsyncClient, relays: list[RelayProcess], tenant: str, until: float
) -> list[int]:
    """4 requests a second, alternating between the relays: well within the limit."""
    statuses: list[int] = []
    number = 0
    while time.time() < until:
        relay = relays[number % len(relays)]
        number += 1
        answer = await client.post(f"{relay.url}/b24/{tenant}/print", content=BODY, headers=FORM)
        statuses.append(answer.status_code)
        await asyncio.sleep(0.25)
    return statuses


async def test_the_limit_holds_across_two_relays(nats_cluster: NatsCluster, tmp_path: Path) -> None:
    nats_cluster.ensure_all_up()
    (tmp_path / "relay-nats-password").write_text(RELAY_PASSWORD)
    # the tenants first: a relay that read "no such tenant" would use its own --rate (20) for
    # up to the registry cache's 5 s
    for tenant in ("rate-a", "rate-b", "rate-c"):
        add_tenant(nats_cluster, tmp_path, tenant)
    relays = start_relays(nats_cluster, tmp_path, 2, "--burst", str(RATE))
    try:
        verify = nats_cluster.pki.client_context()
        limits = httpx.Limits(max_connections=2 * CONCURRENCY_PER_RELAY + 4)
        async with httpx.AsyncClient(verify=verify, timeout=15, limits=limits) as client:
            accepted_at: list[tuple[float, float]] = []
            started = time.time()
            until = started + FLOOD_SECONDS
            flooded, trickled = await asyncio.gather(
                flood(client, relays, "rate-a", until, accepted_at),
                trickle(client, relays, "rate-b", until),
            )
            finished = time.time()
            windows = math.floor(finished) - math.floor(started) + 1
            accepted = flooded.count(200)
            assert set(flooded) <= {200, 429}, flooded
            assert flooded.count(429) > accepted, "the flood was hardly limited"
            by_window = Counter(math.floor(sent) for sent, _answered in accepted_at)
            # One instance alone grants up to RATE per window, two without a shared window
            # nearly twice that. The slack of one window: nats-server before 2.9.21 does not
            # serialise concurrent `update(last=…)` on a clustered stream (nats-io/nats-server
            # #4320), so two instances racing may both win now and then (seen: 41-44 of 40).
            assert accepted <= RATE * (windows + 1), (accepted, windows, sorted(by_window.items()))
            assert accepted >= RATE, (accepted, windows)
            assert trickled and set(trickled) == {200}, f"the other tenant was limited: {trickled}"

            # the bus gone: fail closed
            first = await client.post(
                f"{relays[0].url}/b24/rate-c/print", content=BODY, headers=FORM
            )
            assert first.status_code == 200
            for index in range(3):
                nats_cluster.kill(index)
            answer = await client.post(
                f"{relays[0].url}/b24/rate-c/print", content=BODY, headers=FORM
            )
            assert answer.status_code == 503, answer.text
            assert answer.headers["Retry-After"] == "1"
            assert "nothing was printed" in answer.json()["ERRORS"][0]
    finally:
        nats_cluster.ensure_all_up()
        for relay in relays:
            relay.kill()  # stateless: nothing to lose, and no drain to wait for
