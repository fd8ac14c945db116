"""The event drain: offline events in, jobs in the outbox, events cleared — in that order.

The host binds the events it needs offline (``event.bind`` ``event_type=offline`` with the
configured ``auth_connector``; b24restdocs ``events/``), then loops:

1. one ``batch``: ``event.offline.get`` with ``clear=0`` (the page is *reserved* under a
   ``process_id``, hidden from other readers, not deleted) and the rules item;
2. the ``process_id`` is written to ``automation/claim.json`` (atomic, 0600) before
   anything else;
3. the jobs are planned (:mod:`.plan`), announced to reply delivery (``expect``: durable)
   and stored in ``KASSAJOB`` (:mod:`.outbox`);
4. only then ``event.offline.clear {process_id}``, and the claim file goes.

Dying anywhere in 2–4 leaves the page reserved; at the next start the drain takes it again
(``event.offline.get {process_id}`` from the claim file, and every other reserved page
``event.offline.list`` shows — a claim that died before its file was written) and plans it
once more: the ledger finds the jobs already stored, so nothing prints twice. A full page
is followed at once by the next; an empty one waits ``automation.poll-seconds``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from kassa_appliance.aio import wait_event
from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.errors import BitrixError
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.bitrix.storage import ensure_storage
from kassa_appliance.channels.automation.outbox import PlannedJob, publish
from kassa_appliance.channels.automation.plan import Planner
from kassa_appliance.channels.automation.reading import CrmReader
from kassa_appliance.channels.automation.rules_store import RulesStore, read_command
from kassa_appliance.channels.automation.settings import AutomationConfig
from kassa_appliance.files import write_private_file

log = logging.getLogger(__name__)

EVENTS = ("ONCRMDEALADD", "ONCRMDEALUPDATE", "ONPAYMENTENTITYSAVED")
PAGE = 50
DEBUG_PAUSE_BEFORE_CLEAR_ENV = "KASSA_DEBUG_PAUSE_AUTOMATION_BEFORE_CLEAR"
"""Test-only (with ``KASSA_DEBUG_HOOKS=1``): a file path. The first time a page was planned
and stored while that file does not exist, the drain creates it and hangs before
``event.offline.clear``, so a test can SIGKILL it there. Never set on a device."""

Expect = Callable[[PlannedJob], None]


def debug_pause_before_clear(
    environ: Mapping[str, str] | None = None,
) -> Callable[[], Awaitable[None]] | None:
    env = os.environ if environ is None else environ
    target = env.get(DEBUG_PAUSE_BEFORE_CLEAR_ENV)
    if env.get("KASSA_DEBUG_HOOKS") != "1" or not target:
        return None
    marker = Path(target)

    async def pause() -> None:
        if marker.exists():
            return
        log.warning("debug hook: pausing before event.offline.clear")
        marker.write_text(f"{os.getpid()}\n", encoding="utf-8")
        await asyncio.sleep(3600)

    return pause


class EventDrain:
    def __init__(
        self,
        rest: RestClient,
        config: AutomationConfig,
        state_dir: Path,
        *,
        expect: Expect | None,
        pause_before_clear: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._rest = rest
        self._config = config
        self._claim_file = state_dir / "claim.json"
        self._expect = expect
        self._pause = pause_before_clear
        self.rules = RulesStore(rest)
        self._planner = Planner(CrmReader(rest))
        self.wake = asyncio.Event()
        self._to_clear: str | None = None
        """A stored page whose clear goes with the next round."""
        self.bound: list[str] = []
        self.missing: dict[str, str] = {}
        """Events that could not be bound, and why (e.g. no ``sale`` scope)."""
        self.counters = {"events": 0, "pages": 0, "jobs": 0, "refused": 0, "recovered": 0}
        self.last_round: float | None = None

    def snapshot(self) -> dict[str, Any]:
        return {
            **self.rules.snapshot(),
            "bound": list(self.bound),
            "not_bound": dict(self.missing),
            **self.counters,
            "last_round": self.last_round,
        }

    # -- set-up ---------------------------------------------------------------------------

    async def bind(self) -> None:
        connector = self._config.connector
        listed = await self._rest.result("event.get", {}, priority=Priority.STATUS) or []
        have = {
            str(b.get("event") or "").upper()
            for b in listed
            if isinstance(b, Mapping)
            and str(b.get("offline") or "") == "1"
            and str(b.get("connector_id") or "") == connector
        }
        for event in EVENTS:
            if event in have:
                continue
            try:
                await self._rest.result(
                    "event.bind",
                    {"event": event, "event_type": "offline", "auth_connector": connector},
                    priority=Priority.STATUS,
                )
            except BitrixError as error:
                self.missing[event] = f"{error.code}: {error.description}"
                log.warning("automation: cannot bind %s offline: %s", event, error)
                continue
            log.info("automation: bound %s offline (connector %s)", event, connector)
        self.bound = [e for e in EVENTS if e not in self.missing]

    # -- the loop -------------------------------------------------------------------------

    async def run(self) -> None:
        await ensure_storage(self._rest)  # KASSAJOB, where the jobs go (idempotent)
        await self.rules.ensure_storage()
        await self.bind()
        method, params = read_command()  # the rules in force before a reserved page is planned
        (rules,) = await self._rest.batch([(method, params)], priority=Priority.JOB)
        await self.rules.take(rules)
        await self.recover()
        while True:
            taken = await self.round()
            if taken < PAGE:
                self.wake.clear()
                await wait_event(self.wake, self._config.poll_seconds)

    async def recover(self) -> int:
        """Take again the pages reserved by a run that died before clearing them."""
        claims: list[str] = []
        saved = self._saved_claim()
        if saved:
            claims.append(saved)
        listed = await self._rest.result(
            "event.offline.list",
            {"filter": {"!PROCESS_ID": ""}, "auth_connector": self._config.connector},
        )
        for row in listed or []:
            process_id = str(row.get("PROCESS_ID") or "") if isinstance(row, Mapping) else ""
            if process_id and process_id not in claims:
                claims.append(process_id)
        for process_id in claims:
            got = await self._rest.result(
                "event.offline.get",
                {"process_id": process_id, "clear": 0, "auth_connector": self._config.connector},
            )
            events = _events(got)
            log.info("automation: taking again %d reserved events (%s)", len(events), process_id)
            self.counters["recovered"] += len(events)
            await self._handle(process_id, events)
        return len(claims)

    async def round(self) -> int:
        """One page: (clear the last one,) reserve, plan, store. Returns how many events it
        held. The clear of a stored page rides in the next round's ``batch``, before its
        ``event.offline.get`` (a batch runs its commands in order): one request a round."""
        connector = self._config.connector
        commands: list[tuple[str, Mapping[str, Any]]] = []
        if self._to_clear is not None:
            commands.append(
                ("event.offline.clear", {"process_id": self._to_clear, "auth_connector": connector})
            )
        commands.append(
            ("event.offline.get", {"clear": 0, "limit": PAGE, "auth_connector": connector})
        )
        commands.append(read_command())
        answers = await self._rest.batch(commands, priority=Priority.JOB)
        self.last_round = time.time()
        if self._to_clear is not None:
            cleared = answers.pop(0)
            if cleared.error is not None:
                raise cleared.error
            self._to_clear = None
            self._claim_file.unlink(missing_ok=True)
        got, rules = answers
        await self.rules.take(rules)
        if got.error is not None:
            raise got.error
        process_id = str(got.result.get("process_id") or "") if isinstance(got.result, dict) else ""
        events = _events(got.result)
        if not events or not process_id:
            return 0
        await self._handle(process_id, events, clear_now=False)
        return len(events)

    async def _handle(
        self, process_id: str, events: list[Mapping[str, Any]], *, clear_now: bool = True
    ) -> None:
        self._save_claim(process_id)
        jobs = await self._planner.plan(events, self.rules.rules) if events else []
        for job in jobs:
            if self._expect is not None:
                self._expect(job)
        await publish(self._rest, jobs)
        self.counters["events"] += len(events)
        self.counters["pages"] += 1
        self.counters["jobs"] += sum(1 for j in jobs if j.refusal is None)
        self.counters["refused"] += sum(1 for j in jobs if j.refusal is not None)
        if self._pause is not None:
            await self._pause()
        if not clear_now:
            self._to_clear = process_id
            self.wake.set()  # clear soon, not a poll interval later
            return
        await self._rest.result(
            "event.offline.clear",
            {"process_id": process_id, "auth_connector": self._config.connector},
        )
        self._claim_file.unlink(missing_ok=True)

    def _save_claim(self, process_id: str) -> None:
        if self._saved_claim() == process_id:
            return
        self._claim_file.parent.mkdir(parents=True, exist_ok=True)
        write_private_file(self._claim_file, json.dumps({"process_id": process_id}) + "\n")

    def _saved_claim(self) -> str | None:
        try:
            value = json.loads(self._claim_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        process_id = value.get("process_id") if isinstance(value, dict) else None
        return str(process_id) if process_id else None


def _events(result: Any) -> list[Mapping[str, Any]]:
    events = result.get("events") if isinstance(result, Mapping) else None
    if isinstance(events, Mapping):
        events = list(events.values())
    return [e for e in events if isinstance(e, Mapping)] if isinstance(events, list) else []
