"""LAN requests on the engine's queue: one journal job per sub-task, in order, exactly once.

A request (Web Requests ``{uuid, request}`` or a KKMServer command) is stored in the
:class:`~kassa_appliance.channels.lan.store.LanStore`, then its first sub-task becomes a
journal job (source ``lan``) and the engine is woken: from there it is a job like a
Bitrix24 one, fiscalised in arrival order with everything else, recovered by the FD check
after a crash or a lost connection. Sub-task k+1 is submitted only once sub-task k is
``ready``; after an error the rest are ``interrupted`` (Atol's code 502) and never reach the
register. The dispatcher (:meth:`LanQueue.run`) does this on every engine status change
and settles each request's outcome for the queue counters; it also picks up, after a
restart, a request whose next job was not yet submitted.

A job gets the reply target ``{"kind": "outbox"}`` (mirrored into Bitrix24's KASSAJOB by
:mod:`~kassa_appliance.channels.lan.outbox`) when it changes something on the register
(fiscal documents, cash in/out); queries are not mirrored.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Literal

from kassa_appliance.aio import wait_event
from kassa_appliance.channels.lan.ids import client_id_of, kkm_job_id, wr_job_id
from kassa_appliance.channels.lan.store import LanStore, Scope, StoredRequest
from kassa_appliance.fiscal.engine import Engine
from kassa_appliance.fiscal.journal import CANCELLED_CODE, Job, JobNotCancellable, JobState
from kassa_appliance.registers.base import FISCAL_TASK_TYPES

log = logging.getLogger(__name__)

SOURCE = "lan"
MIRRORED_TYPES = FISCAL_TASK_TYPES | {"cashIn", "cashOut"}
DISPATCH_INTERVAL = 0.25
"""Seconds between looks at pending requests when the engine reports nothing."""

Status = Literal["wait", "inProgress", "ready", "error", "interrupted", "blocked", "canceled"]

CONNECTION_CODES = frozenset({1, 2, 3, 4, 241})
FN_CODES = frozenset({115, 116, 117, 118, 119, 120, 121, 137, 159, 166, 177})
PAPER_CODES = frozenset({44, 45, 46, 47, 114})


@dataclass(frozen=True)
class Block:
    """The queue's blocked state as Atol reports it (``isBlocked``, ``blockedUUID``…)."""

    job_id: str | None = None
    reason: str = ""

    @property
    def is_blocked(self) -> bool:
        return self.job_id is not None

    @property
    def client_id(self) -> str:
        return "" if self.job_id is None else client_id_of(self.job_id)


@dataclass(frozen=True)
class SubTask:
    status: Status
    job: Job | None


class NotCancellable(Exception):
    pass


def _atol_code(wait_code: str | None) -> int | None:
    if wait_code and wait_code.startswith("atol-") and wait_code[5:].isdigit():
        return int(wait_code[5:])
    return None


def block_reason(wait_code: str | None) -> str:
    code = _atol_code(wait_code)
    if code in PAPER_CODES:
        return "paperError"
    if code in FN_CODES or wait_code == "recovery-mismatch":
        return "fnError"
    return "connectionError"


class LanQueue:
    def __init__(self, engine: Engine, store: LanStore, *, mirror: bool) -> None:
        self._engine = engine
        self._store = store
        self._mirror = mirror
        self._pending: dict[int, StoredRequest] = {r.seq: r for r in store.pending()}
        self._changed = asyncio.Event()
        self._stopping = False
        engine.add_listener(lambda _status: self._changed.set())

    @property
    def engine(self) -> Engine:
        return self._engine

    @property
    def store(self) -> LanStore:
        return self._store

    # -- ids and submission ------------------------------------------------------------

    @staticmethod
    def job_id(request: StoredRequest, index: int) -> str:
        if request.scope == "kkm":
            return kkm_job_id(request.client_id)
        return wr_job_id(request.client_id, index)

    def submit(
        self, scope: Scope, client_id: str, tasks: list[dict[str, Any]], meta: dict[str, Any]
    ) -> tuple[StoredRequest, bool]:
        """Store the request and submit its first job; ``False`` for a known client id."""
        request, created = self._store.add(scope, client_id, tasks, meta)
        if created:
            self._pending[request.seq] = request
            self._submit_job(request, 0)
        return request, created

    def _submit_job(self, request: StoredRequest, index: int) -> None:
        task = request.tasks[index]
        reply = None
        if self._mirror and task.get("type") in MIRRORED_TYPES:
            reply = {"targets": [{"kind": "outbox"}]}
        _job, created = self._engine.journal.submit(
            self.job_id(request, index), task, source=SOURCE, reply=reply
        )
        if created:
            self._engine.wake()

    # -- reading -----------------------------------------------------------------------

    def block(self) -> Block:
        """Blocked, Atol's way: the job at the head of the queue may be on the register
        and the engine cannot settle it now (connection, FN, paper)."""
        head = self._engine.journal.next_pending()
        if head is None:
            return Block()
        status = self._engine.status()
        if head.state is JobState.BLOCKED or (
            head.state is JobState.FISCALIZING and status.waiting
        ):
            return Block(head.id, block_reason(head.wait_reason))
        if status.waiting and status.print_pending:
            return Block(head.id, "paperError")
        return Block()

    def subtasks(self, request: StoredRequest) -> list[SubTask]:
        block: Block | None = None
        views: list[SubTask] = []
        stopped = False
        for index in range(len(request.tasks)):
            if stopped:
                views.append(SubTask("interrupted", None))
                continue
            job = self._engine.journal.get(self.job_id(request, index))
            if job is None:
                views.append(SubTask("canceled" if request.canceled else "wait", None))
                continue
            status: Status
            if job.state is JobState.RECEIVED:
                status = "wait"
            elif job.state is JobState.BLOCKED:
                status = "blocked"
            elif job.state is JobState.FISCALIZING:
                # Started; while the engine waits (register offline, no paper) a task
                # it let through is not running: Atol would show it still waiting.
                block = block or self.block()
                if block.job_id == job.id:
                    status = "blocked"
                elif self._engine.status().waiting:
                    status = "wait"
                else:
                    status = "inProgress"
            elif job.state.is_final and job.state is not JobState.FAILED:
                status = "ready"
            elif job.error_code == CANCELLED_CODE:
                status = "canceled"
            else:
                status = "error"
            if status in ("error", "canceled"):
                stopped = True
            views.append(SubTask(status, job))
        if request.canceled:
            views = [SubTask("canceled", v.job) if v.status == "interrupted" else v for v in views]
        return views

    # -- cancelling --------------------------------------------------------------------

    def cancel(self, request: StoredRequest, *, by: str) -> None:
        """Cancel a request none of whose sub-tasks has started; raises NotCancellable."""
        if request.canceled:
            raise NotCancellable("already canceled")
        first = self._engine.journal.get(self.job_id(request, 0))
        if first is not None and first.state is not JobState.RECEIVED:
            raise NotCancellable(first.state.value)
        if first is not None:
            try:
                self._engine.journal.cancel(first.id, by=by)
            except JobNotCancellable as error:
                raise NotCancellable(str(error)) from None
            self._engine.wake()
        self._store.mark_canceled(request.seq)
        self._store.settle(request.seq, "canceled")
        self._pending.pop(request.seq, None)

    # -- the dispatcher ----------------------------------------------------------------

    async def run(self) -> None:
        """Submit next sub-tasks and settle outcomes until :meth:`stop`."""
        while not self._stopping:
            self._changed.clear()
            try:
                self.dispatch()
            except Exception:  # one bad row must not stop the LAN queue
                log.exception("LAN dispatcher: unexpected error; retrying")
            await wait_event(self._changed, DISPATCH_INTERVAL)

    def stop(self) -> None:
        self._stopping = True
        self._changed.set()

    def dispatch(self) -> None:
        for request in list(self._pending.values()):
            self._advance(request)

    def _advance(self, request: StoredRequest) -> None:
        journal = self._engine.journal
        for index in range(len(request.tasks)):
            job_id = self.job_id(request, index)
            state = journal.state_of(job_id)
            if state is None:
                self._submit_job(request, index)
                return
            if not state.is_final:
                return
            if state is JobState.FAILED:
                job = journal.get(job_id)
                cancelled = job is not None and job.error_code == CANCELLED_CODE
                self._settle(request, "canceled" if cancelled else "error")
                return
        self._settle(request, "ready")

    def _settle(
        self, request: StoredRequest, outcome: Literal["ready", "error", "canceled"]
    ) -> None:
        self._store.settle(request.seq, outcome)
        self._pending.pop(request.seq, None)

    @property
    def pending_requests(self) -> int:
        return len(self._pending)
