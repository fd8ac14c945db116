"""Property: no job can stop the queue.

Arbitrary JSON values — and objects with a random ``type``, real task types with random
extra fields, receipts with a deeply nested pass-through field — go through
Journal.submit into one running engine with the simulator register. Every job ends
final (never left pending), a valid sell submitted after the garbage is fiscalised, and
the register has exactly one receipt per fiscalised receipt job.

One engine serves every example (in its own thread, with its own event loop), so the
test stays bounded: a few hundred jobs in well under a minute on two cores.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kassa_appliance.fiscal.engine import Engine
from kassa_appliance.fiscal.journal import Job, JobState, Journal
from kassa_appliance.fiscal.receipt import TASK_TYPES
from kassa_appliance.registers.base import RECEIPT_TASK_TYPES
from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.registers.simulator_state import load_state
from sample_tasks import sell
from test_engine import FAST

WAIT_SECONDS = 30.0


class EngineThread:
    """An engine working a real journal file in a thread of its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.journal_file = root / "journal.sqlite3"
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._started.wait(30)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.engine = Engine(
            Journal(self.journal_file), SimulatorRegister(self.root / "simulator"), FAST
        )
        self._worker = self.loop.create_task(self.engine.run())
        self.loop.call_soon(self._started.set)
        self.loop.run_until_complete(self._worker)
        self.engine.journal.close()  # in the thread that opened it

    def wake(self) -> None:
        self.loop.call_soon_threadsafe(self.engine.wake)

    def wait_for(self, job_id: str) -> Job:
        done: Future[Job] = asyncio.run_coroutine_threadsafe(
            self.engine.wait_for(job_id, WAIT_SECONDS), self.loop
        )
        return done.result(WAIT_SECONDS + 10)

    def receipts_printed(self) -> int:
        state = load_state(self.root / "simulator")
        counts = {} if state is None else state.document_counts
        return sum(counts.get(kind, 0) for kind in RECEIPT_TASK_TYPES)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.engine.stop(), self.loop).result(30)
        self._thread.join(30)
        self.loop.close()


@pytest.fixture(scope="module")
def appliance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineThread]:
    running = EngineThread(tmp_path_factory.mktemp("poison"))
    yield running
    running.stop()


def nested(depth: int, leaf: Any) -> Any:
    value = leaf
    for level in range(depth):
        value = {"a": value} if level % 2 else [value]
    return value


keys = st.text(max_size=12)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats()
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=16,
)
random_type = st.builds(
    lambda kind, rest: {**rest, "type": kind}, json_values, st.dictionaries(keys, json_values)
)
task_type_with_extras = st.builds(
    lambda kind, rest: {**rest, "type": kind},
    st.sampled_from(sorted(TASK_TYPES)),
    st.dictionaries(keys, json_values, max_size=3),
)
sell_with_a_field_changed = st.builds(
    lambda key, value: {**sell(), key: value},
    st.sampled_from(["items", "payments", "total", "operator", "companyInfo", "clientInfo"]) | keys,
    json_values,
)
deep_pass_through = st.builds(
    lambda field, depth, leaf: {**sell(), field: nested(depth, leaf)},
    st.sampled_from(["companyInfo", "clientInfo", "agentInfo", "imcParams", "items"]),
    st.integers(min_value=20, max_value=700),
    scalars,
)
garbage = json_values | random_type | task_type_with_extras | sell_with_a_field_changed
garbage |= deep_pass_through

job_numbers = itertools.count()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.lists(garbage, min_size=1, max_size=3))
def test_garbage_never_stops_the_queue(appliance: EngineThread, tasks: list[Any]) -> None:
    with Journal(appliance.journal_file) as journal:
        submitted: list[str] = []
        for task in tasks:
            job_id = f"garbage-{next(job_numbers)}"
            try:
                journal.submit(job_id, task, source="property")
            except (ValueError, RecursionError):
                continue  # refused at the journal's door (e.g. a number over 4,300 digits)
            submitted.append(job_id)
        valid = f"valid-{next(job_numbers)}"
        journal.submit(valid, sell("7.00"), source="property")
        appliance.wake()

        assert appliance.wait_for(valid).state is JobState.FISCALIZED
        jobs = [journal.get(job_id) for job_id in submitted]
        assert all(job is not None and job.state.is_final for job in jobs), jobs
        for job in jobs:
            assert job is not None
            if job.state is JobState.FAILED:
                assert job.error_message and "Traceback" not in job.error_message
        assert journal.pending_count() == 0
        fiscalized_receipts = sum(
            1
            for job in journal.all_jobs()
            if job.state is JobState.FISCALIZED and job.task_type in RECEIPT_TASK_TYPES
        )
        assert appliance.receipts_printed() == fiscalized_receipts
