"""The kassa's durable JetStream pull consumer: checks from the relay into the journal.

A message is acked only after its job is committed to the journal under the check's id
(``Journal.submit`` returns after the SQLite commit), so a crash before the ack makes
JetStream deliver it again and the journal's "known id" rule makes that a no-op: a check
is never printed twice. A message that is not a check for this kassa is answered in the
results bucket (when it names a result key) and terminated, so it is never retried.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from kassa_appliance.bitrix.parsing import job_id_problem
from kassa_appliance.channels.relay.results import ResultsBucket, ResultsUnavailable
from kassa_appliance.channels.relay.settings import RelayConfig
from kassa_appliance.channels.relay.wire import (
    DIGEST,
    JOBS_STREAM,
    SOURCE,
    STATUS_ERROR,
    durable_name,
    inbox_prefix,
    result_record,
)
from kassa_appliance.fiscal.journal import Journal
from kassa_appliance.inputs import InputRejected, decode_json_bytes, shorten

log = logging.getLogger(__name__)

JOB_PREFIX = "relay:"
"""Journal ids of relay checks: ``relay:<check id>``."""
FETCH_TIMEOUT = 5.0
RETRY_SECONDS = 1.0


class NotTls(Exception):
    """A configured server does not require TLS: the credentials are never sent to it."""


async def require_tls(url: str, timeout: float = 5.0) -> None:
    """Read the server's INFO line and refuse a server that does not require TLS.

    nats-py sends the credentials in clear when the server does not ask for TLS, whatever
    the URL's scheme; this probe runs before every connection attempt."""
    parts = urlsplit(url)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname, parts.port or 4222), timeout
        )
    except (TimeoutError, OSError):
        return  # not reachable now: nats-py will not reach it either
    try:
        line = await asyncio.wait_for(reader.readline(), timeout)
    except (TimeoutError, OSError):
        return
    finally:
        writer.close()
    if b'"tls_required":true' not in line.replace(b" ", b""):
        raise NotTls(f"{parts.hostname}:{parts.port} does not require TLS")


class RelayConsumer:
    def __init__(
        self,
        settings: RelayConfig,
        kassa: str,
        journal: Journal,
        wake: Callable[[], None],
        *,
        needs_report: bool,
        cashbox_target: bool = True,
    ) -> None:
        assert settings.tenant is not None
        self.settings = settings
        self.tenant = settings.tenant
        self.kassa = kassa
        self._journal = journal
        self._wake = wake
        self._needs_report = needs_report
        self._cashbox_target = cashbox_target
        """Add ``{"kind": "cashbox"}`` targets (only with a Bitrix24 link to apply them;
        without one Bitrix24 learns the outcome from CHECK_URL)."""
        self.on_submitted: Callable[[str], None] | None = None
        """Told the id of every check put in (or found in) the journal."""
        self.nc: Client | None = None
        self.results: ResultsBucket | None = None
        self.connected = asyncio.Event()
        self.stats: dict[str, Any] = {"taken": 0, "repeated": 0, "refused": 0, "errors": 0}

    def snapshot(self) -> dict[str, Any]:
        return {
            "connected": self.nc is not None and self.nc.is_connected,
            "tenant": self.tenant,
            "kassa": self.kassa,
            **self.stats,
        }

    async def _connect(self) -> Client:
        for url in self.settings.servers:
            await require_tls(url)
        context = ssl.create_default_context(cafile=self.settings.ca_file)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return await nats.connect(
            servers=list(self.settings.servers),
            user=self.settings.user_for(self.kassa),
            password=self.settings.password,
            tls=context,
            inbox_prefix=inbox_prefix(self.tenant, self.kassa),
            name=f"kassa-appliance {self.tenant}/{self.kassa}",
            max_reconnect_attempts=-1,
            reconnect_time_wait=0.5,
            connect_timeout=5,
        )

    async def run(self) -> None:
        """Take checks until cancelled; any failure: back off, connect and bind again."""
        while True:
            try:
                self.nc = await self._connect()
                self.results = ResultsBucket(self.nc, self.tenant, self.kassa)
                self.connected.set()
                js = self.nc.jetstream()
                sub = await js.pull_subscribe_bind(
                    durable_name(self.tenant, self.kassa),
                    JOBS_STREAM,
                    inbox_prefix=(inbox_prefix(self.tenant, self.kassa) + ".").encode(),
                )
                while True:
                    try:
                        messages = await sub.fetch(self.settings.fetch_batch, FETCH_TIMEOUT)
                    except TimeoutError:
                        continue
                    for message in messages:
                        await self._take(message)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.stats["errors"] += 1
                self.stats["last_error"] = shorten(f"{type(error).__name__}: {error}", 200)
                log.warning("relay: %s; connecting again", self.stats["last_error"])
                self.connected.clear()
                if self.nc is not None:
                    await self._close_quietly(self.nc)
                    self.nc = None
                await asyncio.sleep(RETRY_SECONDS)

    @staticmethod
    async def _close_quietly(nc: Client) -> None:
        try:
            await asyncio.wait_for(nc.close(), 5)
        except Exception:
            pass

    async def close(self) -> None:
        if self.nc is not None:
            await self._close_quietly(self.nc)
            self.nc = None

    async def _take(self, message: Msg) -> None:
        check = self._parse(message.data)
        if isinstance(check, str):
            self.stats["refused"] += 1
            log.warning("relay: refused a message: %s", check)
            await self._refuse(message, check)
            return
        job_id, task, targets = check
        _job, created = self._journal.submit(
            job_id,
            task,
            source=SOURCE,
            reply={"targets": targets},
            needs_report=self._needs_report,
        )
        if created:
            self.stats["taken"] += 1
            self._wake()
        else:
            self.stats["repeated"] += 1
        if self.on_submitted is not None:
            self.on_submitted(job_id)
        await message.ack()

    def _parse(self, data: bytes) -> tuple[str, dict[str, Any], list[dict[str, Any]]] | str:
        try:
            body = decode_json_bytes(data, "relay check")
        except InputRejected as error:
            return str(error)
        if not isinstance(body, dict):
            return "relay check: expected a JSON object"
        if body.get("tenant") != self.tenant or body.get("kassa") != self.kassa:
            return "relay check: for another tenant or kassa"
        job_id, digest, task = body.get("check"), body.get("key"), body.get("task")
        if not isinstance(job_id, str) or job_id_problem(job_id):
            return "relay check: no usable check id"
        if not isinstance(digest, str) or not DIGEST.fullmatch(digest):
            return "relay check: no usable result key"
        if not isinstance(task, dict):
            return "relay check: task: expected an Atol task object"
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        targets: list[dict[str, Any]] = [
            {
                "kind": "relay",
                "tenant": self.tenant,
                "kassa": self.kassa,
                "check": job_id,
                "key": digest,
                "meta": meta,
            }
        ]
        cashbox_uuid = body.get("cashbox_uuid")
        if self._cashbox_target and isinstance(cashbox_uuid, str) and cashbox_uuid:
            targets.append({"kind": "cashbox", "uuid": cashbox_uuid})
        # The journal id is scoped, so a Bitrix24 KASSAJOB item can never share an id with a
        # relay check (bitrix/parsing.LOCAL_JOB_PREFIXES refuses "relay:" from producers).
        return f"{JOB_PREFIX}{job_id}", task, targets

    async def _refuse(self, message: Msg, reason: str) -> None:
        try:
            body = decode_json_bytes(message.data, "relay check")
            digest = body.get("key") if isinstance(body, dict) else None
            if (
                self.results is not None
                and isinstance(digest, str)
                and DIGEST.fullmatch(digest)
                and body.get("tenant") == self.tenant
                and body.get("kassa") == self.kassa
            ):
                record = result_record(
                    check=str(body.get("check"))[:200], status=STATUS_ERROR, error=reason
                )
                await self.results.put(digest, record)
        except (InputRejected, ResultsUnavailable):
            pass
        await message.term()
