"""The KASSADEV heartbeat: one item per kassa (NAME = kassa id) with the device status,
written when the status changes (at most every ``min_gap`` seconds) and at least every
``interval`` seconds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kassa_appliance.bitrix.errors import NotFound
from kassa_appliance.bitrix.protocol import DEVICE_ENTITY, dumps
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.bitrix.writeback import encodable


class DeviceHeartbeat:
    def __init__(
        self,
        rest: RestClient,
        *,
        kassa_id: str,
        device_status: Callable[[], dict[str, Any]],
        interval: float,
        min_gap: float,
    ) -> None:
        self._rest = rest
        self.kassa_id = kassa_id
        self._device_status = device_status
        self._heartbeat_interval = interval
        self._heartbeat_min_gap = min_gap
        self._device_item: int | None = None
        self._last_heartbeat: tuple[str, float] | None = None

    async def beat(self, *, force: bool = False) -> bool:
        """Update the KASSADEV item if the status changed or it is due; True if written."""
        status = encodable(dumps(self._device_status()))
        now = time.monotonic()
        last = self._last_heartbeat
        if not force and last is not None:
            same = last[0] == status
            age = now - last[1]
            if (same and age < self._heartbeat_interval) or age < self._heartbeat_min_gap:
                return False
        values = {
            "KASSA": self.kassa_id,
            "STATUS": status,
            "SEEN": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if self._device_item is None:
            found = await self._rest.result(
                "entity.item.get",
                {"ENTITY": DEVICE_ENTITY, "FILTER": {"NAME": self.kassa_id}, "SORT": {"ID": "ASC"}},
            )
            if found:
                self._device_item = int(found[0]["ID"])
        if self._device_item is None:
            new_id = await self._rest.result(
                "entity.item.add",
                {"ENTITY": DEVICE_ENTITY, "NAME": self.kassa_id, "PROPERTY_VALUES": values},
            )
            self._device_item = int(new_id)
        else:
            try:
                await self._rest.result(
                    "entity.item.update",
                    {"ENTITY": DEVICE_ENTITY, "ID": self._device_item, "PROPERTY_VALUES": values},
                )
            except NotFound:
                self._device_item = None
                raise
        self._last_heartbeat = (status, now)
        return True
