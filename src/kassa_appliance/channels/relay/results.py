"""Results back to the relay: one value per check in the results bucket, written with the
kassa's own credentials (it may publish only to its own keys), read back with a direct get
(it may read only its own keys). Both are idempotent: the same outcome writes the same
value."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from nats.aio.client import Client

from kassa_appliance.channels.relay.wire import (
    STATUS_DONE,
    STATUS_ERROR,
    direct_get_subject,
    result_record,
    results_key,
    results_subject,
)

PUBLISH_TIMEOUT = 10.0


def document_time(params: dict[str, Any], fallback: float) -> float:
    """The fiscal document's own time (``fiscalDocumentDateTime``, ISO), so the same outcome
    always gives the same PRINT_END_TIME; ``fallback`` when the register gave none."""
    stamp = params.get("fiscalDocumentDateTime")
    if isinstance(stamp, str):
        try:
            return datetime.fromisoformat(stamp).timestamp()
        except ValueError:
            pass
    return fallback


class ResultsUnavailable(Exception):
    """The bus did not confirm (no connection, no quorum): try again later."""


def record_for(
    *,
    check: str,
    state: str,
    result: dict[str, Any] | None,
    qr: str | None,
    error_code: str | None,
    error_message: str | None,
    printed_at: float,
    meta: dict[str, Any] | None,
) -> dict[str, Any]:
    """The results-bucket value of a final job (``state``: done | failed | cancelled)."""
    meta = meta or {}
    callback_url = meta.get("callback_url") if isinstance(meta.get("callback_url"), str) else None
    if state == "done" and result is not None:
        raw = result.get("fiscalParams")
        params = raw if isinstance(raw, dict) else {}
        record = result_record(
            check=check,
            status=STATUS_DONE,
            fiscal_params=params,
            printed_at=document_time(params, printed_at),
            qr=qr,
            callback_url=callback_url,
        )
    else:
        reason = error_message or "the register did not print it"
        if error_code:
            reason = f"{error_code}: {reason}"
        record = result_record(
            check=check, status=STATUS_ERROR, error=reason[:2000], callback_url=callback_url
        )
    if meta:
        record["meta"] = meta
    return record


class ResultsBucket:
    def __init__(self, nc: Client, tenant: str, kassa: str) -> None:
        self._nc = nc
        self._js = nc.jetstream(timeout=PUBLISH_TIMEOUT)
        self.tenant = tenant
        self.kassa = kassa

    def key(self, digest: str) -> str:
        return results_key(self.tenant, self.kassa, digest)

    async def put(self, digest: str, record: dict[str, Any]) -> None:
        data = json.dumps(record, ensure_ascii=False, sort_keys=True).encode()
        try:
            await self._js.publish(results_subject(self.key(digest)), data, timeout=PUBLISH_TIMEOUT)
        except Exception as error:
            raise ResultsUnavailable(type(error).__name__) from None

    async def get(self, digest: str) -> dict[str, Any] | None:
        try:
            reply = await self._nc.request(direct_get_subject(self.key(digest)), b"", timeout=5)
        except Exception as error:
            raise ResultsUnavailable(type(error).__name__) from None
        if reply.headers and reply.headers.get("Status") == "404":
            return None
        if not reply.data:
            return None
        try:
            value = json.loads(reply.data)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None
