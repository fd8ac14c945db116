"""Garbage at the running appliance (issue 9): whatever arrives — through the CLI or as a
KASSAJOB item — ends final, the daemon process stays up, and a valid job sent after the
garbage still prints.

One real stack for the whole property: the Bitrix24 emulator and push server on loopback,
the daemon as a subprocess on the simulator. The stack's event loop runs in a thread of its
own, so Hypothesis drives plain synchronous examples against it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kassa_appliance.bitrix.jobs import STATE_DONE, STATE_FAILED
from kassa_appliance.fiscal.journal import Journal
from kassa_appliance.testbeds.demo_stack import ApplianceStack, StackSettings
from sample_tasks import sell

T = TypeVar("T")
WAIT = 60.0
FINAL_ITEM_STATES = {STATE_DONE, STATE_FAILED}
DAEMON_CLI = (sys.executable, "-m", "kassa_appliance")

json_leaves = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**60), max_value=10**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    json_leaves,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=25,
)
task_like = st.builds(
    lambda kind, extra: {"type": kind, **extra},
    st.sampled_from(["sell", "sellReturn", "openShift", "reportX", "cashIn", "bogus"])
    | json_values,
    st.dictionaries(
        st.sampled_from(["items", "payments", "total", "operator", "companyInfo", "taxationType"])
        | st.text(max_size=8),
        json_values,
        max_size=5,
    ),
)


def deep(levels: int) -> str:
    return '{"type": "sell", "companyInfo": ' + "[" * levels + "]" * levels + "}"


raw_texts = (
    st.builds(json.dumps, task_like | json_values)
    | st.text(max_size=200)
    | st.sampled_from(
        [
            '{"type": "sell", "x": "\\ud800"}',
            '{"type": ' + "1" * 5000 + "}",
            '{"type": NaN}',
            deep(600),
            deep(5000),
            "[" * 3000,
        ]
    )
)


class StackThread:
    """An ApplianceStack living on an event loop in its own thread."""

    def __init__(self, root: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.stack = ApplianceStack(StackSettings(root=root, push_buffer_delay=0.0))
        self.run(self.stack.start(), timeout=90)

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float = WAIT) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(timeout)

    def close(self) -> None:
        try:
            self.run(self.stack.stop(), timeout=90)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    def item_state(self, item_id: int) -> str | None:
        async def read() -> str | None:
            item = self.stack.stored_item(item_id)
            return None if item is None else item.properties.get("STATE")

        return self.run(read())


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackThread]:
    running = StackThread(tmp_path_factory.mktemp("poison-stack"))
    try:
        yield running
    finally:
        running.close()


def cli_print(data_dir: Path, data: bytes, job_id: str) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAP", "KASSA_"))}
    return subprocess.run(
        [*DAEMON_CLI, "--data-dir", str(data_dir), "print", "-", "--id", job_id, "--timeout", "20"],
        input=data,
        capture_output=True,
        env=env,
        timeout=WAIT,
    )


def wait_final(stack: StackThread, item_id: int) -> str:
    deadline = time.monotonic() + WAIT
    while (state := stack.item_state(item_id)) not in FINAL_ITEM_STATES:
        stack.stack.check_daemon()  # raises if the daemon process died
        assert time.monotonic() < deadline, f"KASSAJOB item {item_id} stuck in {state}"
        time.sleep(0.05)
    assert state is not None
    return state


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(text=raw_texts)
def test_garbage_through_every_door_never_stops_the_daemon(stack: StackThread, text: str) -> None:
    item_id = stack.run(stack.stack.publish(f"garbage-{uuid.uuid4()}", text))
    data = text.encode("utf-8", "surrogatepass")
    result = cli_print(stack.stack.data_dir, data, f"cli-garbage-{uuid.uuid4()}")
    assert result.returncode in (0, 2, 3), result.stderr.decode("utf-8", "replace")
    assert b"Traceback" not in result.stderr
    wait_final(stack, item_id)
    assert stack.stack.daemon is not None and stack.stack.daemon.returncode is None


def test_a_valid_job_after_the_garbage_prints(stack: StackThread) -> None:
    item_id = stack.run(stack.stack.publish(f"valid-{uuid.uuid4()}", sell()))
    assert wait_final(stack, item_id) == STATE_DONE
    job_id = f"cli-valid-{uuid.uuid4()}"
    result = cli_print(stack.stack.data_dir, json.dumps(sell()).encode(), job_id)
    assert result.returncode == 0, result.stderr.decode("utf-8", "replace")
    with Journal(stack.stack.data_dir / "journal.sqlite3") as journal:
        pending = journal.pending_count()
    assert pending == 0, "a job was left pending behind the garbage"
