"""Shared pieces of the CRM automation tests: an emulated portal with a CRM, the rules item
as the Kassa app would save it, and reads of what the automation left in Bitrix24.

The portal user's side (moving a deal, marking a payment paid) goes through the emulator's
CRM controls (``Emulator.crm``), which raise the same offline events a user's action does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from bitrix_support import oauth_client
from kassa_appliance.bitrix.central_settings import SETTINGS_ENTITY
from kassa_appliance.bitrix.protocol import JOB_ENTITY
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.channels.automation.rules_store import RULES_ITEM, SETTINGS_PROPERTIES
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.limits import PRODUCER_ADDRESS
from kassa_appliance.testbeds.bitrix24.rest_crm_state import COMPANY, CONTACT
from kassa_appliance.testbeds.bitrix24.state import Item

KASSA = "kassa-auto"
WAIT = 60.0


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"{what} never happened"
        await asyncio.sleep(0.05)


def won_rule(**changes: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": "won",
        "kassa": KASSA,
        "trigger": {
            "kind": "deal_stage",
            "category_id": 0,
            "stage_id": "WON",
            "return_stage_id": "LOSE",
        },
        "receipt_type": "full_payment",
        "payment_type": "electronically",
        "taxation": "osn",
        "vat_default": "none",
        "electronic": True,
        "payments_address": "https://shop.example.ru",
    }
    rule.update(changes)
    return rule


@dataclass
class CrmPortal:
    emulator: Emulator
    admin: RestClient
    version: int = 0
    rules_item: int | None = None
    _made: list[int] = field(default_factory=list)

    @property
    def crm(self) -> Any:
        return self.emulator.crm

    async def create_settings_storage(self) -> None:
        await self.admin.result(
            "entity.add",
            {"ENTITY": SETTINGS_ENTITY, "NAME": "Kassa settings", "ACCESS": {"AU": "R"}},
        )
        for code in SETTINGS_PROPERTIES:
            await self.admin.result(
                "entity.item.property.add",
                {"ENTITY": SETTINGS_ENTITY, "PROPERTY": code, "NAME": code},
            )

    async def save_rules(self, rules: list[dict[str, Any]] | str) -> int:
        """What the Kassa app's settings page does on save: SETTINGS, VERSION + 1, ERROR cleared."""
        self.version += 1
        text = rules if isinstance(rules, str) else json.dumps({"rules": rules}, ensure_ascii=False)
        values = {"KASSA": "", "SETTINGS": text, "VERSION": str(self.version), "ERROR": ""}
        if self.rules_item is None:
            self.rules_item = int(
                await self.admin.result(
                    "entity.item.add",
                    {"ENTITY": SETTINGS_ENTITY, "NAME": RULES_ITEM, "PROPERTY_VALUES": values},
                )
            )
        else:
            await self.admin.result(
                "entity.item.update",
                {"ENTITY": SETTINGS_ENTITY, "ID": self.rules_item, "PROPERTY_VALUES": values},
            )
        return self.version

    def rules_answer(self) -> dict[str, str]:
        entity = self.emulator.state.entities[SETTINGS_ENTITY]
        item = next(i for i in entity.items.values() if i.name == RULES_ITEM)
        return {k: str(item.properties.get(k) or "") for k in ("VERSION", "APPLIED", "ERROR")}

    def add_client(
        self, *, email: str | None = "client@example.ru", phone: str | None = None
    ) -> int:
        contacts: dict[str, str] = {}
        if email:
            contacts["email"] = email
        if phone:
            contacts["phone"] = phone
        return int(self.crm.add_party(CONTACT, "Иван Клиентов", **contacts))

    def add_company(self, **contacts: str) -> int:
        return int(self.crm.add_party(COMPANY, "ООО Покупатель", **contacts))

    def deal(
        self,
        rows: list[dict[str, Any]] | None = None,
        *,
        contact: bool = True,
        **options: Any,
    ) -> int:
        if rows is None:
            rows = [{"productName": "Кабель USB-B", "price": 350, "quantity": 2, "taxRate": 20}]
        if contact and "contact_id" not in options:
            options["contact_id"] = self.add_client()
        deal_id = int(self.crm.add_deal("Заказ", rows, **options))
        self._made.append(deal_id)
        return deal_id

    def jobs(self, prefix: str = "auto:") -> list[Item]:
        entity = self.emulator.state.entities.get(JOB_ENTITY)
        if entity is None:
            return []
        return sorted(
            (i for i in entity.items.values() if i.name.startswith(prefix)), key=lambda i: i.id
        )

    def deal_jobs(self, deal_id: int) -> list[Item]:
        return self.jobs(f"auto:deal:{deal_id}:")

    def task_of(self, item: Item) -> dict[str, Any]:
        task: dict[str, Any] = json.loads(str(item.properties.get("TASK") or "{}"))
        return task

    def comments(self, deal_id: int) -> list[str]:
        return [c.text for c in self.crm.comments.values() if c.entity_id == deal_id]

    def queued(self) -> int:
        return len(self.emulator.events.rows)


async def make_portal(tmp_path: Path) -> CrmPortal:
    emulator = Emulator()
    await emulator.start()
    admin = oauth_client(emulator, tmp_path / "portal-admin.json", local_address=PRODUCER_ADDRESS)
    return CrmPortal(emulator, admin)


def money(value: Any) -> Decimal:
    return Decimal(str(value))
