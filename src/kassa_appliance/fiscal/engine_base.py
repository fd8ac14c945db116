"""The engine's settings and the state its parts share.

Owns :class:`EngineSettings`, :class:`MustWait` (the register cannot make progress now)
and :class:`EngineBase`: the typed declaration of the engine's mutable state (set in
``Engine.__init__``) and of the methods one part of the engine calls in another. The
engine is one class made of mixins, one module each (shift policy, recovery, register
connection, receipt chains, queue pacing, status); they all derive from this base.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass

from kassa_appliance.fiscal.engine_poison import InternalErrors
from kassa_appliance.fiscal.engine_status import StatusReporting
from kassa_appliance.fiscal.journal import Job, Journal, Transition
from kassa_appliance.registers.base import JsonDict


@dataclass(frozen=True)
class EngineSettings:
    auto_open_shift: bool = True
    auto_close_expired_shift: bool = True
    call_timeout: float = 60.0
    retry_interval: float = 1.0
    """First pause before retrying a register that asked us to wait; doubles up to max."""
    max_retry_interval: float = 10.0
    journal_poll_interval: float = 0.5
    """How often an idle engine looks for jobs written by another process (CLI, hooks)."""
    progress_interval: float = 0.05
    """How often the engine takes in the results of a running receipt chain."""
    default_operator: JsonDict | None = None
    default_taxation: str | None = None
    default_vat: str | None = None
    """VAT type (``vat22``) for a receipt position without ``tax`` (central settings)."""
    default_payments_place: str | None = None
    """``paymentsPlace`` (tag 1187) for a receipt without one (central settings)."""
    device_facts_interval: float = 300.0
    """How often an idle engine asks the register for its facts (model, FN expiry, OFD
    backlog, shift, paper: fiscal/device_facts.py); also after a shift change."""
    chain_receipts: bool = True
    """Fiscalise queued receipts back to back in the register thread (engine_chain). A CLI
    command running the queue for its one job turns it off, so it can stop right after."""


class MustWait(Exception):
    """The register cannot make progress now; the reason is a human sentence.

    ``job`` is the job that waits when it is not the one the engine started with (a
    receipt further down a chain).
    """

    def __init__(self, reason: str, code: str, job: Job | None = None):
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.job = job


class EngineBase(StatusReporting, ABC):
    """State and cross-part methods of the engine (see ``Engine.__init__``)."""

    _settings: EngineSettings
    _wake: asyncio.Event
    _changed: asyncio.Event
    _available: asyncio.Event
    _finished: asyncio.Event
    _stopping: bool
    _last_fd: int | None
    """FD number after our last successful fiscal task; None when not known for sure."""
    _retry_delay: float
    _shift_fix_ambiguous: bool
    _thread_journal: Journal | None
    """The register thread's own connection, for receipt chains (sqlite3 objects
    stay in the thread that made them)."""
    _internal_errors: InternalErrors

    # engine.py
    @abstractmethod
    async def _work(self, job: Job) -> None: ...

    @abstractmethod
    def _finish_failed(self, job: Job, code: str, message: str) -> None: ...

    @abstractmethod
    def _prepare_quietly(self, job: Job) -> JsonDict | None: ...

    # engine_connection.py
    @abstractmethod
    async def _ensure_ready(self) -> None: ...

    @abstractmethod
    async def _query_last_fd(self) -> int: ...

    @abstractmethod
    async def _try_continue_print(self, raise_wait: bool = False) -> None: ...

    # engine_recovery.py
    @staticmethod
    @abstractmethod
    def _fiscalized_transition(job: Job, result: JsonDict) -> Transition: ...

    @abstractmethod
    def _note_fiscalized(self, job: Job, result: JsonDict) -> None: ...
