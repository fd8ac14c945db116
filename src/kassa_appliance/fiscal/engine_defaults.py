"""The defaults the engine fills into tasks that lack them, replaceable while it runs.

From the configuration (``operator.*``, ``company.taxation``) and from the central
settings kept in Bitrix24 (the same, plus the default VAT of a position and the place of
settlement): a new version is applied without a restart by :meth:`TaskDefaults.update_defaults`.

Thread safety: the defaults live in the engine's frozen :class:`EngineSettings`; an update
builds a new settings object and swaps the reference (one assignment, atomic for any
reader), and every reader takes the reference once per task, so a task never mixes two
versions — also in the register thread that prepares receipt chains.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import Any

from kassa_appliance.fiscal.engine_base import EngineBase, EngineSettings
from kassa_appliance.registers.base import RECEIPT_TASK_TYPES, JsonDict

OPERATOR_TASKS = RECEIPT_TASK_TYPES | {"openShift", "closeShift", "reportX", "cashIn", "cashOut"}
"""Tasks that may carry the operator default (receipts also taxation, VAT, place)."""

_UPDATE_LOCK = threading.Lock()
"""Serialises updates (read-modify-swap of the settings); readers never take it."""


class TaskDefaults(EngineBase):
    def update_defaults(
        self,
        *,
        operator: JsonDict | None,
        taxation: str | None,
        vat: str | None = None,
        payments_place: str | None = None,
    ) -> None:
        """Use these defaults for every task prepared from now on (a job already sent to
        the register keeps the task it was sent with)."""
        with _UPDATE_LOCK:
            self._settings = replace(
                self._settings,
                default_operator=dict(operator) if operator else None,
                default_taxation=taxation,
                default_vat=vat,
                default_payments_place=payments_place,
            )

    @property
    def defaults(self) -> EngineSettings:
        """The settings in force (for status and tests)."""
        return self._settings

    def _operator_fields(self) -> JsonDict:
        operator = self._settings.default_operator
        return {"operator": dict(operator)} if operator else {}

    def _with_defaults(self, raw: object) -> object:
        """Fill the configured defaults where the task has none."""
        settings = self._settings  # one version for the whole task
        task_type = raw.get("type") if isinstance(raw, dict) else None
        if not (isinstance(raw, dict) and isinstance(task_type, str)):
            return raw
        if task_type not in OPERATOR_TASKS:
            return raw
        task: dict[str, Any] = dict(raw)
        if "operator" not in task and settings.default_operator:
            task["operator"] = dict(settings.default_operator)
        if task_type not in RECEIPT_TASK_TYPES:
            return task
        if "taxationType" not in task and settings.default_taxation:
            task["taxationType"] = settings.default_taxation
        if "paymentsPlace" not in task and settings.default_payments_place:
            task["paymentsPlace"] = settings.default_payments_place
        items = task.get("items")
        if settings.default_vat and isinstance(items, list):
            task["items"] = [_with_vat(item, settings.default_vat) for item in items]
        return task


def _with_vat(item: object, vat: str) -> object:
    """A position without ``tax`` gets the default VAT type; anything else is left as is."""
    if isinstance(item, dict) and item.get("type") == "position" and "tax" not in item:
        return {**item, "tax": {"type": vat}}
    return item
