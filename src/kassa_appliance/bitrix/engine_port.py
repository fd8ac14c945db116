"""The link's one coupling to the local engine: :class:`EnginePort` and its adapter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from kassa_appliance.bitrix.protocol import SOURCE
from kassa_appliance.fiscal.journal import Job, Journal


class EnginePort(Protocol):
    """What the job link needs from the local engine (see :class:`EngineAdapter`)."""

    @property
    def journal(self) -> Journal: ...

    def wake(self) -> None: ...

    def add_listener(self, listener: Callable[[Any], None]) -> None: ...


class EngineAdapter:
    """The one place that knows the Journal/Engine API.

    ``submit`` records a job for the engine and wakes it. ``refuse`` records a job as
    failed without it ever being runnable: the stored task is a marker the engine rejects,
    and the FAILED transition follows in the same event-loop step (no await in between),
    so neither the engine nor a crash can fiscalise a refused job.
    """

    def __init__(self, engine: EnginePort) -> None:
        self._engine = engine

    @property
    def journal(self) -> Journal:
        return self._engine.journal

    def on_change(self, callback: Callable[[], None]) -> None:
        self._engine.add_listener(lambda _status: callback())

    def get(self, job_id: str) -> Job | None:
        return self.journal.get(job_id)

    def submit(
        self, job_id: str, task: Any, *, reply: dict[str, Any] | None, created_by: int | None
    ) -> bool:
        _job, created = self.journal.submit(
            job_id, task, source=SOURCE, reply=reply, created_by=created_by, needs_report=True
        )
        if created:
            self._engine.wake()
        return created

    def refuse(self, job_id: str, *, code: str, reason: str, created_by: int | None) -> bool:
        _job, created = self.journal.submit_failed(
            job_id,
            {"refused": code},
            source=SOURCE,
            error_code=code,
            error_message=reason,
            created_by=created_by,
            needs_report=True,
        )
        return created

    def cancel(self, job_id: str, *, by: str) -> Job:
        """Cancel a job still ``received``; raises JobNotCancellable saying why not."""
        job = self.journal.cancel(job_id, by=by)
        self._engine.wake()
        return job

    def unreported(self, limit: int) -> list[Job]:
        return [j for j in self.journal.unreported(limit) if j.source == SOURCE]

    def mark_reported(self, job_id: str) -> None:
        self.journal.mark_reported(job_id)
