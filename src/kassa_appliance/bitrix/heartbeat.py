"""The KASSADEV heartbeat: one item per kassa (NAME = kassa id) with the device status.

It rides along: whenever a write-back batch goes out and the status changed, the KASSADEV
update is one more command in that batch (:meth:`DeviceHeartbeat.command`), so it costs
no request of its own. It goes out alone (:meth:`DeviceHeartbeat.wanted`) when it is due
(every ``interval`` seconds), when something an operator must see changed (the register
went off- or online, the queue started or stopped waiting, an alert; at most every
``min_gap`` seconds), and for the counters that change with every receipt only after
``settle`` seconds without a batch to ride in. The item is looked up (or created) once,
by :meth:`DeviceHeartbeat.beat`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.errors import NotFound
from kassa_appliance.bitrix.protocol import DEVICE_ENTITY, dumps
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.bitrix.writeback import Command, Delivery, encodable

VOLATILE_KEYS = frozenset({"processed", "current_job", "queue_depth"})
"""Status fields that change with every receipt: they ride along in write-back batches
and go alone only after ``settle`` seconds without a batch."""
SETTLE_SECONDS = 15.0


class DeviceHeartbeat:
    def __init__(
        self,
        rest: RestClient,
        *,
        kassa_id: str,
        device_status: Callable[[], dict[str, Any]],
        interval: float,
        min_gap: float,
        settle: float = SETTLE_SECONDS,
    ) -> None:
        self._rest = rest
        self.kassa_id = kassa_id
        self._device_status = device_status
        self._heartbeat_interval = interval
        self._heartbeat_min_gap = min_gap
        self._settle = max(settle, min_gap)
        self._device_item: int | None = None
        self._last_heartbeat: tuple[str, float] | None = None
        self._last_significant: str | None = None

    @property
    def known(self) -> bool:
        """The KASSADEV item id is known, so the heartbeat can ride in a batch."""
        return self._device_item is not None

    def _status(self) -> tuple[str, str]:
        status = self._device_status()
        significant = {k: v for k, v in status.items() if k not in VOLATILE_KEYS}
        return encodable(dumps(status)), encodable(dumps(significant))

    def wanted(self, now: float | None = None) -> bool:
        """A heartbeat should go out even alone: it is due, a significant field changed
        (after ``min_gap``), or the counters changed and no batch carried them for
        ``settle`` seconds."""
        now = time.monotonic() if now is None else now
        last = self._last_heartbeat
        if last is None:
            return True
        age = now - last[1]
        if age >= self._heartbeat_interval:
            return True
        if age < self._heartbeat_min_gap:
            return False
        status, significant = self._status()
        if significant != self._last_significant:
            return True
        return status != last[0] and age >= self._settle

    def command(self, *, alone: bool = False) -> Command | None:
        """The KASSADEV update for a batch: riding along (``alone`` False) whenever the
        status differs from the last one written; alone only when :meth:`wanted`. None
        when not needed or the item id is not known yet."""
        if self._device_item is None:
            return None
        status, significant = self._status()
        now = time.monotonic()
        last = self._last_heartbeat
        if alone and not self.wanted(now):
            return None
        if not alone and last is not None and last[0] == status:
            return None
        values = self._values(status)

        def settled(delivery: Delivery) -> None:
            if delivery is Delivery.WRITTEN:
                self._last_heartbeat = (status, now)
                self._last_significant = significant
            elif delivery is Delivery.VANISHED:
                self._device_item = None

        return Command(
            "heartbeat",
            self.kassa_id,
            self._device_item,
            values,
            entity=DEVICE_ENTITY,
            on_settled=settled,
        )

    def _values(self, status: str) -> dict[str, str]:
        return {
            "KASSA": self.kassa_id,
            "STATUS": status,
            "SEEN": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }

    async def beat(self, *, force: bool = False) -> bool:
        """Update the KASSADEV item on its own (looking it up or creating it first) if the
        status changed or it is due; True if written."""
        status, significant = self._status()
        now = time.monotonic()
        last = self._last_heartbeat
        if not force and last is not None:
            same = last[0] == status
            age = now - last[1]
            if (same and age < self._heartbeat_interval) or age < self._heartbeat_min_gap:
                return False
        values = self._values(status)
        if self._device_item is None:
            found = await self._rest.result(
                "entity.item.get",
                {"ENTITY": DEVICE_ENTITY, "FILTER": {"NAME": self.kassa_id}, "SORT": {"ID": "ASC"}},
                priority=Priority.HEARTBEAT,
            )
            if found:
                self._device_item = int(found[0]["ID"])
        if self._device_item is None:
            new_id = await self._rest.result(
                "entity.item.add",
                {"ENTITY": DEVICE_ENTITY, "NAME": self.kassa_id, "PROPERTY_VALUES": values},
                priority=Priority.HEARTBEAT,
            )
            self._device_item = int(new_id)
        else:
            try:
                await self._rest.result(
                    "entity.item.update",
                    {"ENTITY": DEVICE_ENTITY, "ID": self._device_item, "PROPERTY_VALUES": values},
                    priority=Priority.HEARTBEAT,
                )
            except NotFound:
                self._device_item = None
                raise
        self._last_heartbeat = (status, now)
        self._last_significant = significant
        return True
