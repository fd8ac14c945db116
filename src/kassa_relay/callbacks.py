"""ATOL Online callbacks: every final result with a ``callback_url`` is POSTed there once
per relay fleet (at least once: a shared durable consumer on the results bucket hands each
result to one instance, which acks it after the shop's server answered, or after it gave
up on a 4xx)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import aiohttp
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from kassa_appliance.channels.relay.wire import RESULTS_BUCKET, RESULTS_STREAM
from kassa_relay.atol_online import report
from kassa_relay.bus import CALLBACKS_DURABLE
from kassa_relay.defaults import DEFAULT_CALLBACK_TIMEOUT_SECONDS

log = logging.getLogger("kassa_relay")
MAX_DELIVER = 12
RETRY_SECONDS = 15.0


class CallbackWorker:
    def __init__(self, relay: Any) -> None:
        self._relay = relay

    async def run(self) -> None:
        js = self._relay.bus.js
        with contextlib.suppress(Exception):
            await js.add_consumer(
                RESULTS_STREAM,
                ConsumerConfig(
                    durable_name=CALLBACKS_DURABLE,
                    filter_subject=f"$KV.{RESULTS_BUCKET}.>",
                    ack_policy=AckPolicy.EXPLICIT,
                    deliver_policy=DeliverPolicy.NEW,
                    ack_wait=DEFAULT_CALLBACK_TIMEOUT_SECONDS * 2,
                    max_deliver=MAX_DELIVER,
                    num_replicas=self._relay.bus.options.replicas,
                ),
            )
        timeout = aiohttp.ClientTimeout(total=DEFAULT_CALLBACK_TIMEOUT_SECONDS)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                try:
                    sub = await js.pull_subscribe_bind(CALLBACKS_DURABLE, RESULTS_STREAM)
                    while True:
                        try:
                            messages = await sub.fetch(10, timeout=2)
                        except TimeoutError:
                            continue
                        for message in messages:
                            await self._handle(session, message)
                except asyncio.CancelledError:
                    raise
                except Exception as error:
                    log.warning("callbacks: %s; retrying", type(error).__name__)
                    await asyncio.sleep(1.0)

    async def _handle(self, session: aiohttp.ClientSession, message: Any) -> None:
        try:
            record = json.loads(message.data)
        except ValueError:
            await message.ack()
            return
        url = record.get("callback_url") if isinstance(record, dict) else None
        meta = record.get("meta") if isinstance(record, dict) else None
        if not url or record.get("status") == "wait" or not isinstance(meta, dict):
            await message.ack()
            return
        body = report(
            str(meta.get("uuid")),
            record,
            group_code=str(meta.get("group_code")),
            external_id=meta.get("external_id"),
        )
        try:
            async with session.post(url, json=body) as response:
                if response.status >= 500:
                    raise aiohttp.ClientError(f"HTTP {response.status}")
            self._relay.count("callbacks_sent")
            await message.ack()
        except (TimeoutError, aiohttp.ClientError):
            self._relay.count("callbacks_retried")
            await message.nak(delay=RETRY_SECONDS)
