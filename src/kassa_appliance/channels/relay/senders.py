"""Reply senders of the relay's two target kinds, for the reply-delivery worker:

* ``relay`` — the outcome into the results bucket (the relay answers CHECK_URL and ATOL
  Online ``report`` from it, and makes the callbacks). Idempotent: the same outcome writes
  the same value; ``find_sent`` reads the key back.
* ``cashbox`` — ``sale.cashbox.check.apply`` through the Bitrix24 link's REST client, by the
  UUID the relay returned from PRINT_URL. Idempotent on the portal's side by that UUID (a
  second apply of the same fiscal fields changes nothing), so ``find_sent`` says "not
  sent" and the worker simply applies again.
"""

from __future__ import annotations

import time
from typing import Any

from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.errors import TEMPORARY_ERRORS, BitrixError, NotFound
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.channels.delivery.protocol import (
    Delivery,
    DeliveryFailed,
    DeliveryRetry,
    Outcome,
)
from kassa_appliance.channels.relay.results import ResultsBucket, ResultsUnavailable, record_for
from kassa_appliance.channels.relay.wire import FISCAL_FIELDS, STATUS_WAIT


def outcome_record(outcome: Outcome, target: dict[str, Any]) -> dict[str, Any]:
    meta = target.get("meta") if isinstance(target.get("meta"), dict) else None
    return record_for(
        check=str(target.get("check") or outcome.job_id),
        state=outcome.state,
        result=outcome.result,
        qr=outcome.qr,
        error_code=outcome.error_code,
        error_message=outcome.error_message,
        printed_at=time.time(),
        meta=meta,
    )


def apply_params(uuid: str, record: dict[str, Any]) -> dict[str, Any]:
    """``sale.cashbox.check.apply`` parameters for a results-bucket value."""
    if record.get("status") == "done" and isinstance(record.get("fiscal"), dict):
        fiscal = record["fiscal"]
        return {"UUID": uuid, **{name: fiscal.get(name, "") for name in FISCAL_FIELDS}}
    return {"UUID": uuid, "STATUS": "ERROR", "ERROR": str(record.get("error", ""))[:1000]}


class RelaySender:
    kind = "relay"

    def __init__(self, results: Any) -> None:
        self._results = results
        """A callable giving the current :class:`ResultsBucket` (None while disconnected)."""

    def _bucket(self) -> ResultsBucket:
        bucket = self._results()
        if bucket is None:
            raise DeliveryRetry("not connected to the relay")
        assert isinstance(bucket, ResultsBucket)
        return bucket

    async def find_sent(self, delivery: Delivery) -> str | None:
        digest = str(delivery.target.get("key", ""))
        try:
            record = await self._bucket().get(digest)
        except ResultsUnavailable as error:
            raise DeliveryRetry(f"relay: {error}") from None
        if record is None or record.get("status") == STATUS_WAIT:
            return None
        return digest

    async def send(self, delivery: Delivery) -> str:
        digest = delivery.target.get("key")
        if not isinstance(digest, str):
            raise DeliveryFailed("relay target without a result key")
        try:
            await self._bucket().put(digest, outcome_record(delivery.outcome, delivery.target))
        except ResultsUnavailable as error:
            raise DeliveryRetry(f"relay: {error}") from None
        return digest


class CashboxSender:
    kind = "cashbox"

    def __init__(self, rest: RestClient) -> None:
        self._rest = rest

    async def find_sent(self, delivery: Delivery) -> str | None:
        return None  # applying again is harmless (by UUID)

    async def send(self, delivery: Delivery) -> str:
        uuid = delivery.target.get("uuid")
        if not isinstance(uuid, str) or not uuid:
            raise DeliveryFailed("cashbox target without a uuid")
        record = outcome_record(delivery.outcome, delivery.target)
        await apply_check(self._rest, uuid, record)
        return uuid


async def apply_check(rest: RestClient, uuid: str, record: dict[str, Any]) -> None:
    try:
        await rest.result(
            "sale.cashbox.check.apply", apply_params(uuid, record), priority=Priority.RESULT
        )
    except TEMPORARY_ERRORS as error:
        raise DeliveryRetry(f"sale.cashbox.check.apply: {error}") from None
    except NotFound as error:
        raise DeliveryFailed(f"sale.cashbox.check.apply: {error}") from None
    except BitrixError as error:
        if error.code in {"ERROR_CHECK_NOT_FOUND", "ERROR_CHECK_FAILURE"}:
            raise DeliveryFailed(f"sale.cashbox.check.apply: {error}") from None
        raise DeliveryRetry(f"sale.cashbox.check.apply: {error}") from None
