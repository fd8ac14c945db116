"""The relay's only state: NATS JetStream (the jobs stream, the results and registry buckets).

:class:`Bus` connects (TLS verified when the URL is ``tls://`` or a CA is given), creates
what is missing with the replica count asked for (3 on a 3-node cluster), and offers the
few operations the web handlers need. Every instance of the relay runs the same idempotent
setup at start, so any of them may be the first.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    KeyValueConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import (
    BadRequestError,
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from kassa_appliance.channels.relay.wire import (
    JOBS_STREAM,
    JOBS_SUBJECT_ROOT,
    REGISTRY_BUCKET,
    RESULTS_BUCKET,
    durable_name,
    job_subject,
)
from kassa_relay.defaults import (
    DEFAULT_ACK_WAIT_SECONDS,
    DEFAULT_DUPLICATE_WINDOW_SECONDS,
    DEFAULT_JOB_MAX_AGE_SECONDS,
    DEFAULT_PUBLISH_TIMEOUT_SECONDS,
    DEFAULT_REPLICAS,
    DEFAULT_RESULTS_TTL_SECONDS,
)

MSG_ID_HEADER = "Nats-Msg-Id"
CALLBACKS_DURABLE = "relay_callbacks"
TOKEN_KEY_FIELD = "key"


RESULT_READ_TIMEOUT = 2.0
"""Seconds a results read may take before the bus counts as unavailable."""


class BusUnavailable(Exception):
    """JetStream did not acknowledge in time (no quorum, no connection)."""


@dataclass(frozen=True)
class BusOptions:
    servers: tuple[str, ...]
    user: str | None = None
    password: str | None = None
    ca_file: str | None = None
    replicas: int = DEFAULT_REPLICAS
    publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT_SECONDS
    name: str = "kassa-relay"


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verified TLS: the given CA (or the system's), host names checked."""
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def wants_tls(servers: tuple[str, ...], ca_file: str | None) -> bool:
    return ca_file is not None or any(url.startswith("tls://") for url in servers)


async def connect(options: BusOptions, **extra: Any) -> Client:
    return await nats.connect(
        servers=list(options.servers),
        user=options.user,
        password=options.password,
        tls=tls_context(options.ca_file) if wants_tls(options.servers, options.ca_file) else None,
        name=options.name,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.5,
        connect_timeout=5,
        allow_reconnect=True,
        **extra,
    )


class Bus:
    def __init__(self, options: BusOptions) -> None:
        self.options = options
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._results: KeyValue | None = None
        self._registry: KeyValue | None = None

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None, "Bus.start() first"
        return self._js

    @property
    def results(self) -> KeyValue:
        assert self._results is not None
        return self._results

    @property
    def registry(self) -> KeyValue:
        assert self._registry is not None
        return self._registry

    @property
    def connected(self) -> bool:
        return self._nc is not None and self._nc.is_connected

    async def start(self) -> None:
        self._nc = await connect(self.options)
        self._js = self._nc.jetstream(timeout=self.options.publish_timeout)
        await self._ensure()

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
            self._nc = None

    async def _ensure(self) -> None:
        replicas = self.options.replicas
        stream = StreamConfig(
            name=JOBS_STREAM,
            subjects=[f"{JOBS_SUBJECT_ROOT}.>"],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            num_replicas=replicas,
            duplicate_window=DEFAULT_DUPLICATE_WINDOW_SECONDS,
            max_age=DEFAULT_JOB_MAX_AGE_SECONDS,
            max_msg_size=1024 * 1024,
        )
        try:
            await self.js.stream_info(JOBS_STREAM)
        except NotFoundError:
            try:
                await self.js.add_stream(stream)
            except BadRequestError:  # another instance created it meanwhile
                await self.js.stream_info(JOBS_STREAM)
        self._results = await self._bucket(
            KeyValueConfig(
                bucket=RESULTS_BUCKET,
                history=1,
                ttl=DEFAULT_RESULTS_TTL_SECONDS,
                replicas=replicas,
                direct=True,
                max_value_size=256 * 1024,
            )
        )
        self._registry = await self._bucket(
            KeyValueConfig(bucket=REGISTRY_BUCKET, history=5, replicas=replicas, direct=True)
        )

    async def _bucket(self, config: KeyValueConfig) -> KeyValue:
        try:
            return await self.js.key_value(config.bucket)
        except Exception:
            try:
                return await self.js.create_key_value(config)
            except BadRequestError:
                return await self.js.key_value(config.bucket)

    # -- jobs -------------------------------------------------------------------------------

    async def ensure_consumer(
        self, tenant: str, kassa: str, ack_wait: float = DEFAULT_ACK_WAIT_SECONDS
    ) -> None:
        """The kassa's durable pull consumer (its credentials may only bind to it)."""
        await self.js.add_consumer(
            JOBS_STREAM,
            ConsumerConfig(
                durable_name=durable_name(tenant, kassa),
                filter_subject=job_subject(tenant, kassa),
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=ack_wait,
                max_ack_pending=1000,
                num_replicas=self.options.replicas,
            ),
        )

    async def publish_job(self, tenant: str, kassa: str, msg_id: str, job: dict[str, Any]) -> bool:
        """Publish and wait for the stream's ack; True if JetStream had it already."""
        payload = json.dumps(job, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            ack = await self.js.publish(
                job_subject(tenant, kassa),
                payload,
                timeout=self.options.publish_timeout,
                headers={MSG_ID_HEADER: msg_id},
            )
        except Exception as error:
            raise BusUnavailable(type(error).__name__) from None
        return bool(ack.duplicate)

    # -- results ------------------------------------------------------------------------------

    async def result(
        self, key: str, *, timeout: float = RESULT_READ_TIMEOUT
    ) -> dict[str, Any] | None:
        """The check's result record, or None. Bounded by ``timeout``: while the cluster
        elects a new leader a read can hang for the JetStream timeout, and CHECK_URL must
        answer its caller (WAIT) well before that caller gives up."""
        try:
            entry = await asyncio.wait_for(self.results.get(key), timeout)
        except KeyNotFoundError:
            return None
        except Exception as error:
            raise BusUnavailable(type(error).__name__) from None
        if entry.value is None:
            return None
        try:
            value = json.loads(entry.value)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    async def create_result(self, key: str, record: dict[str, Any]) -> None:
        """Write ``record`` unless the key exists (the appliance may have been faster)."""
        try:
            await self.results.create(key, json.dumps(record, ensure_ascii=False).encode())
        except KeyWrongLastSequenceError:
            pass
        except Exception as error:
            if "wrong last sequence" not in str(error):
                raise BusUnavailable(type(error).__name__) from None

    # -- registry -----------------------------------------------------------------------------

    async def registry_get(self, key: str) -> dict[str, Any] | None:
        try:
            entry = await self.registry.get(key)
        except KeyNotFoundError:
            return None
        if entry.value is None:
            return None
        value = json.loads(entry.value)
        return value if isinstance(value, dict) else None

    async def registry_put(self, key: str, value: dict[str, Any]) -> None:
        await self.registry.put(key, json.dumps(value, ensure_ascii=False).encode())

    async def registry_create(self, key: str, value: dict[str, Any]) -> bool:
        try:
            await self.registry.create(key, json.dumps(value).encode())
        except KeyWrongLastSequenceError:
            return False
        return True
