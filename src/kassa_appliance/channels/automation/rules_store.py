"""The automation rules as stored in Bitrix24, read with every drain round, answered like
central settings.

Where (docs/automation.md "Rules"): the ``KASSACFG`` storage of the Kassa app (central
settings, :mod:`kassa_appliance.bitrix.central_settings`), the item NAME ``@automation``
(no kassa id starts with ``@``): SETTINGS = the rule set as JSON (``{"rules": […]}``),
VERSION raised by one on every save; the daemon writes APPLIED (the version in force) and
ERROR (why it refused VERSION; ``""`` when it took it). A refused version changes nothing:
the rules in force stay. The read rides in the same ``batch`` as ``event.offline.get``, so
it costs no request of its own; only an answer does, once per version.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.central_settings import MAX_ERROR_LENGTH, SETTINGS_ENTITY
from kassa_appliance.bitrix.errors import AlreadyExists, NotFound
from kassa_appliance.bitrix.protocol import item_property
from kassa_appliance.bitrix.rest import BatchItem, RestClient
from kassa_appliance.channels.automation.rules import RuleSet, RulesRefused, parse_rules_text
from kassa_appliance.inputs import shorten

log = logging.getLogger(__name__)

RULES_ITEM = "@automation"
SETTINGS_PROPERTIES = ("KASSA", "SETTINGS", "VERSION", "APPLIED", "ERROR")


def read_command() -> tuple[str, dict[str, Any]]:
    return ("entity.item.get", {"ENTITY": SETTINGS_ENTITY, "FILTER": {"NAME": RULES_ITEM}})


class RulesStore:
    def __init__(self, rest: RestClient) -> None:
        self._rest = rest
        self.rules = RuleSet()
        self.applied_version: int | None = None
        self.refused: tuple[int, str] | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            "rules": [r.id for r in self.rules.rules],
            "applied_version": self.applied_version,
            "refused_version": self.refused[0] if self.refused else None,
            "refused_reason": self.refused[1] if self.refused else None,
        }

    async def ensure_storage(self) -> None:
        """Create KASSACFG where the app has not (idempotent)."""
        try:
            await self._rest.result("entity.get", {"ENTITY": SETTINGS_ENTITY})
            return
        except NotFound:
            pass
        with contextlib.suppress(AlreadyExists):
            await self._rest.result(
                "entity.add",
                {"ENTITY": SETTINGS_ENTITY, "NAME": "Kassa settings", "ACCESS": {"AU": "R"}},
            )
        await self._rest.batch(
            [
                ("entity.item.property.add", {"ENTITY": SETTINGS_ENTITY, "PROPERTY": p, "NAME": p})
                for p in SETTINGS_PROPERTIES
            ],
            priority=Priority.STATUS,
        )

    async def take(self, answer: BatchItem) -> None:
        """The answer of :func:`read_command`: put a new valid version in force, or refuse it."""
        if answer.error is not None:
            if isinstance(answer.error, NotFound):
                return  # no KASSACFG (yet): no rules
            raise answer.error
        items = [i for i in answer.result or [] if isinstance(i, Mapping)]
        if not items:
            return
        item = max(items, key=lambda i: int(str(i.get("ID") or 0)))
        try:
            version = int(item_property(item, "VERSION") or 0)
        except ValueError:
            version = 0
        if version == self.applied_version or (self.refused and self.refused[0] == version):
            return
        applied, error = item_property(item, "APPLIED"), item_property(item, "ERROR")
        try:
            rules = parse_rules_text(item_property(item, "SETTINGS"))
        except RulesRefused as refused:
            reason = shorten(str(refused), MAX_ERROR_LENGTH)
            self.refused = (version, reason)
            log.warning(
                "automation rules version %d refused, keeping version %s: %s",
                version,
                self.applied_version,
                reason,
            )
            await self._answer(item, applied, error, applied=applied, error_text=reason)
            return
        self.rules = rules
        self.applied_version = version
        self.refused = None
        log.info("automation rules version %d in force: %d rules", version, len(rules.rules))
        await self._answer(item, applied, error, applied=str(version), error_text="")

    async def _answer(
        self,
        item: Mapping[str, Any],
        was_applied: str,
        was_error: str,
        *,
        applied: str,
        error_text: str,
    ) -> None:
        if (was_applied, was_error) == (applied, error_text):
            return
        await self._rest.result(
            "entity.item.update",
            {
                "ENTITY": SETTINGS_ENTITY,
                "ID": item.get("ID"),
                "PROPERTY_VALUES": {"APPLIED": applied, "ERROR": error_text},
            },
            priority=Priority.STATUS,
        )
