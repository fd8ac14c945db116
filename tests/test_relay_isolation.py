"""Tenant isolation on the real cluster: a kassa's NATS credentials read only its own
checks and write only its own results. shop-b's kassa tries every way to shop-a's
subject, consumer, results and inboxes, and the server refuses each; shop-b's own consumer
works (the control), and shop-a's check is still waiting, untouched, for shop-a."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from kassa_appliance.channels.relay.wire import (
    JOBS_STREAM,
    direct_get_subject,
    durable_name,
    inbox_prefix,
    job_subject,
    results_subject,
)
from kassa_relay.bus import Bus, BusOptions
from relay_cluster import RELAY_PASSWORD, NatsCluster, kassa_password, register

DENIED_WAIT = 2.0


async def kassa_connection(cluster: NatsCluster, tenant: str, errors: list[str]) -> Client:
    async def on_error(error: Exception) -> None:
        errors.append(str(error))

    return await nats.connect(
        servers=cluster.urls,
        user=durable_name(tenant, "k1"),
        password=kassa_password(tenant, "k1"),
        tls=cluster.pki.client_context(),
        inbox_prefix=inbox_prefix(tenant, "k1"),
        error_cb=on_error,
        max_reconnect_attempts=2,
    )


async def denied(errors: list[str], what: str) -> None:
    deadline = asyncio.get_running_loop().time() + DENIED_WAIT
    while asyncio.get_running_loop().time() < deadline:
        if any("permissions violation" in e.lower() and what.lower() in e.lower() for e in errors):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no permissions violation for {what}: {errors}")


async def test_a_kassa_cannot_reach_another_tenants_checks_or_results(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    nats_cluster.ensure_all_up()
    register(nats_cluster, tmp_path, "shop-a", "k1")
    register(nats_cluster, tmp_path, "shop-b", "k1")
    bus = Bus(
        BusOptions(tuple(nats_cluster.urls), "relay", RELAY_PASSWORD, str(nats_cluster.pki.ca))
    )
    await bus.start()
    try:
        await bus.js.purge_stream(JOBS_STREAM, subject=job_subject("shop-a", "k1"))
        await bus.js.purge_stream(JOBS_STREAM, subject=job_subject("shop-b", "k1"))
        secret_check = {"tenant": "shop-a", "kassa": "k1", "check": "a-secret-check"}
        await bus.publish_job("shop-a", "k1", "iso-a-1", secret_check)
        await bus.publish_job("shop-b", "k1", "iso-b-1", {"tenant": "shop-b", "check": "b-own"})
        await bus.results.put("shop-a.k1.0123456789abcdef0123456789abcdef", b'{"status":"done"}')

        errors: list[str] = []
        nc = await kassa_connection(nats_cluster, "shop-b", errors)
        try:
            js = nc.jetstream(timeout=DENIED_WAIT)
            # 1. subscribe to shop-a's subject (or everything)
            for subject in (
                job_subject("shop-a", "k1"),
                "jobs.>",
                ">",
                "_INBOX.>",
                f"{inbox_prefix('shop-a', 'k1')}.>",
            ):
                await nc.subscribe(subject)
                await denied(errors, subject)
            # 2. pull from shop-a's durable consumer
            stolen = await js.pull_subscribe_bind(
                durable_name("shop-a", "k1"),
                JOBS_STREAM,
                inbox_prefix=(inbox_prefix("shop-b", "k1") + ".").encode(),
            )
            with pytest.raises(Exception):  # noqa: B017 - a timeout: the server never answers
                await stolen.fetch(1, timeout=DENIED_WAIT)
            await denied(errors, durable_name("shop-a", "k1"))
            # 3. read and 4. write shop-a's results; 5. publish a check into shop-a's queue
            with pytest.raises(Exception):  # noqa: B017
                await nc.request(
                    direct_get_subject("shop-a.k1.0123456789abcdef0123456789abcdef"),
                    b"",
                    timeout=DENIED_WAIT,
                )
            for subject in (
                results_subject("shop-a.k1.0123456789abcdef0123456789abcdef"),
                job_subject("shop-a", "k1"),
                "$JS.API.STREAM.INFO.KASSA_JOBS",
            ):
                await nc.publish(subject, b'{"status":"done"}')
                await nc.flush()
                await denied(errors, subject)
            # the control: shop-b's own consumer delivers shop-b's own check
            own = await js.pull_subscribe_bind(
                durable_name("shop-b", "k1"),
                JOBS_STREAM,
                inbox_prefix=(inbox_prefix("shop-b", "k1") + ".").encode(),
            )
            messages = await own.fetch(1, timeout=10)
            assert json.loads(messages[0].data)["check"] == "b-own"
            await messages[0].ack()
        finally:
            await nc.close()

        info = await bus.js.consumer_info(JOBS_STREAM, durable_name("shop-a", "k1"))
        assert info.num_pending + info.num_ack_pending == 1, "shop-a's check was touched"
        record: dict[str, Any] | None = await bus.result(
            "shop-a.k1.0123456789abcdef0123456789abcdef"
        )
        assert record == {"status": "done"}
        await bus.js.purge_stream(JOBS_STREAM, subject=job_subject("shop-a", "k1"))
    finally:
        await bus.close()
