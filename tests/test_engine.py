"""The engine against the real simulator and a real journal file: every error category."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from kassa_appliance.fiscal.engine import Engine, EngineSettings
from kassa_appliance.fiscal.journal import Job, JobState, Journal
from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.registers.simulator_faults import (
    Fault,
    clear_faults,
    read_control,
    set_fault,
    write_control,
)
from kassa_appliance.registers.simulator_state import device_lock, load_state
from sample_tasks import sell

ALWAYS = Fault()
FAST = EngineSettings(
    retry_interval=0.01, max_retry_interval=0.05, journal_poll_interval=0.02, call_timeout=5.0
)


class Appliance:
    """A journal, the simulator and an engine working in the background."""

    def __init__(self, root: Path, engine: Engine, journal: Journal):
        self.state_dir = root / "simulator"
        self.engine = engine
        self.journal = journal

    async def submit(self, job_id: str, task: Any) -> None:
        self.journal.submit(job_id, task, source="test")
        self.engine.wake()

    async def run(self, job_id: str, task: Any, timeout: float = 10.0) -> Job:
        await self.submit(job_id, task)
        return await self.engine.wait_for(job_id, timeout)

    def documents(self, kind: str) -> int:
        state = load_state(self.state_dir)
        return 0 if state is None else state.document_counts.get(kind, 0)

    def fault(self, name: str, fault: Fault | None = ALWAYS) -> None:
        set_fault(self.state_dir, name, fault)


@asynccontextmanager
async def running(
    root: Path, settings: EngineSettings = FAST, **simulator: Any
) -> AsyncIterator[Appliance]:
    journal = Journal(root / "journal.sqlite3")
    register = SimulatorRegister(root / "simulator", **simulator)
    engine = Engine(journal, register, settings)
    worker = asyncio.create_task(engine.run())
    try:
        yield Appliance(root, engine, journal)
    finally:
        await engine.stop()
        await asyncio.wait_for(worker, 30)
        journal.close()


async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition never became true"
        await asyncio.sleep(0.01)


async def test_a_sell_opens_the_shift_and_comes_back_with_fiscal_params_and_qr(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as appliance:
        job = await appliance.run("job-1", sell("150.00"))

    assert job.state is JobState.FISCALIZED
    params = job.result["fiscalParams"] if job.result else {}
    assert params["total"] == 150.0
    assert job.qr is not None and job.qr.startswith("t=") and "&s=150.00&" in job.qr
    assert f"&i={params['fiscalDocumentNumber']}&" in job.qr
    assert appliance.documents("openShift") == 1
    assert appliance.documents("sell") == 1


async def test_a_known_job_id_is_answered_from_the_journal_and_prints_nothing(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as appliance:
        first = await appliance.run("same-id", sell())
        again = await appliance.run("same-id", sell("999.00"))
        assert appliance.documents("sell") == 1
    assert again.result == first.result


async def test_a_malformed_task_fails_with_its_reason_and_prints_nothing(tmp_path: Path) -> None:
    task = sell()
    task["items"][0]["amount"] = "150.00"  # the driver refuses money as a string (mustNumber)
    async with running(tmp_path) as appliance:
        job = await appliance.run("bad", task)
        not_json_object = await appliance.run("worse", ["not", "a", "task"])
        assert appliance.documents("sell") == 0
    assert job.state is JobState.FAILED and job.error_code == "invalid-task"
    assert job.error_message is not None and "items[0].amount" in job.error_message
    assert not_json_object.state is JobState.FAILED


async def test_no_paper_makes_the_job_wait_and_it_resumes_when_paper_is_back(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as appliance:
        await appliance.run("warm-up", sell())
        appliance.fault("no_paper")
        await appliance.submit("waits", sell())
        await wait_until(
            lambda: (
                (job := appliance.journal.get("waits")) is not None and job.wait_reason == "atol-44"
            )
        )
        status = appliance.engine.status()
        assert status.waiting is not None and "paper" in status.waiting
        job = appliance.journal.get("waits")
        assert job is not None and not job.state.is_final
        appliance.fault("no_paper", None)
        done = await appliance.engine.wait_for("waits", 10)
        assert appliance.documents("sell") == 2
    assert done.state is JobState.FISCALIZED


@pytest.mark.parametrize(
    "fault", ["connection_lost_after", "receipt_interrupted"], ids=["atol-241", "atol-177"]
)
async def test_an_answer_lost_after_fiscalisation_is_recovered_without_a_second_receipt(
    tmp_path: Path, fault: str
) -> None:
    async with running(tmp_path) as appliance:
        await appliance.run("warm-up", sell())
        appliance.fault(fault, Fault(count=1))
        job = await appliance.run("ambiguous", sell("77.70"))
        assert appliance.documents("sell") == 2
    assert job.state is JobState.FISCALIZED
    assert job.result is not None and job.result["recovered"] is True
    assert job.result["fiscalParams"]["total"] == 77.7
    assert job.qr is not None and "&s=77.70&" in job.qr


async def test_connection_lost_before_fiscalisation_sends_the_task_again(tmp_path: Path) -> None:
    async with running(tmp_path) as appliance:
        await appliance.run("warm-up", sell())
        appliance.fault("connection_lost_before", Fault(count=2))
        job = await appliance.run("retried", sell())
        assert appliance.documents("sell") == 2
    assert job.state is JobState.FISCALIZED
    assert job.result is not None and "recovered" not in job.result


async def test_a_fiscal_storage_fault_fails_the_job_and_raises_an_alert(tmp_path: Path) -> None:
    async with running(tmp_path) as appliance:
        await appliance.run("warm-up", sell())
        appliance.fault("fn_fault", Fault(count=1))
        job = await appliance.run("refused", sell())
        alerts = appliance.engine.status().alerts
    assert job.state is JobState.FAILED and job.error_code == "atol-118"
    assert any("118" in alert for alert in alerts)


def advance_clock(state_dir: Path, hours: float) -> None:
    with device_lock(state_dir):
        control = read_control(state_dir)
        write_control(
            state_dir,
            replace(control, clock_offset_seconds=control.clock_offset_seconds + hours * 3600),
        )


async def test_an_expired_shift_is_closed_and_reopened_automatically(tmp_path: Path) -> None:
    async with running(tmp_path) as appliance:
        await appliance.run("day-1", sell())
        advance_clock(appliance.state_dir, 25)
        job = await appliance.run("day-2", sell())
        assert appliance.documents("closeShift") == 1
        assert appliance.documents("openShift") == 2
    assert job.state is JobState.FISCALIZED
    assert job.result is not None and job.result["fiscalParams"]["fiscalReceiptNumber"] == 1


async def test_with_auto_close_off_an_expired_shift_blocks_until_someone_closes_it(
    tmp_path: Path,
) -> None:
    settings = replace(FAST, auto_close_expired_shift=False)
    async with running(tmp_path, settings) as appliance:
        await appliance.run("day-1", sell())
        advance_clock(appliance.state_dir, 25)
        await appliance.submit("day-2", sell())
        await wait_until(lambda: (appliance.engine.status().waiting or "").startswith("the shift"))
        assert "kassa-appliance shift close" in (appliance.engine.status().waiting or "")
        # The operator's `shift close` overtakes the stuck receipt.
        closed = await appliance.run("close", {"type": "closeShift"})
        assert closed.state is JobState.FISCALIZED
        job = await appliance.engine.wait_for("day-2", 10)
    assert job.state is JobState.FISCALIZED


async def test_paper_running_out_mid_receipt_keeps_the_fiscal_result_and_prints_later(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as appliance:
        await appliance.run("warm-up", sell())
        appliance.fault("paper_runs_out", Fault(count=1))
        job = await appliance.run("torn", sell())
        assert job.state is JobState.FISCALIZED
        assert job.result is not None and job.result["warnings"] == {"notPrinted": True}
        await wait_until(lambda: appliance.engine.status().print_pending)
        await appliance.submit("next", sell())
        await asyncio.sleep(0.1)
        pending = appliance.journal.get("next")
        assert pending is not None and not pending.state.is_final
        clear_faults(appliance.state_dir)
        appliance.engine.wake()
        done = await appliance.engine.wait_for("next", 10)
        assert not appliance.engine.status().print_pending
    assert done.state is JobState.FISCALIZED


async def test_an_unplugged_register_makes_jobs_wait_and_replugging_resumes_them(
    tmp_path: Path,
) -> None:
    async with running(tmp_path) as appliance:
        await appliance.run("before", sell())
        appliance.engine.set_register_available(False)
        await appliance.submit("during", sell())
        await asyncio.sleep(0.1)
        job = appliance.journal.get("during")
        assert job is not None and job.state is JobState.RECEIVED
        assert not appliance.engine.status().register_online
        appliance.engine.set_register_available(True)
        done = await appliance.engine.wait_for("during", 10)
    assert done.state is JobState.FISCALIZED


async def test_a_hung_driver_call_never_blocks_the_event_loop_and_is_recovered(
    tmp_path: Path,
) -> None:
    settings = replace(FAST, call_timeout=0.2)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    async with running(tmp_path, settings) as appliance:
        await appliance.run("warm-up", sell())
        appliance.fault("print_delay", Fault(seconds=1.0))
        tick_task = asyncio.create_task(ticker())
        await appliance.submit("slow", sell())
        await wait_until(
            lambda: (
                (job := appliance.journal.get("slow")) is not None and job.state is JobState.BLOCKED
            )
        )
        ticks_while_hung = ticks
        assert appliance.engine.register_call_hung
        await asyncio.sleep(0.2)
        assert ticks > ticks_while_hung + 5
        appliance.fault("print_delay", None)
        job = await appliance.engine.wait_for("slow", 10)
        tick_task.cancel()
        assert appliance.documents("sell") == 2
    assert job.state is JobState.FISCALIZED
    assert threading.active_count() >= 1


async def test_after_a_stop_in_the_middle_of_a_queue_the_journal_agrees_with_the_register(
    tmp_path: Path,
) -> None:
    """Results batched with the next job's start must still land when the engine stops."""
    async with running(tmp_path) as appliance:
        for number in range(30):
            appliance.journal.submit(f"job-{number:02d}", sell(f"{100 + number}.00"), source="t")
        appliance.engine.wake()
        await appliance.engine.wait_for("job-05", 10)
    with Journal(tmp_path / "journal.sqlite3") as journal:
        fiscalized = [job for job in journal.all_jobs() if job.state is JobState.FISCALIZED]
        in_flight = [job for job in journal.all_jobs() if job.state is JobState.FISCALIZING]
    state = load_state(tmp_path / "simulator")
    assert state is not None
    assert len(fiscalized) >= 6
    # Every receipt on the register is a fiscalised job, except at most one whose
    # answer the stop interrupted (it is `fiscalizing` and the FD check will settle it).
    assert len(fiscalized) <= state.document_counts["sell"] <= len(fiscalized) + len(in_flight)
    assert len(in_flight) <= 1


async def test_faults_in_the_middle_of_a_batched_queue_still_give_one_receipt_per_job(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    jobs = 40
    async with running(tmp_path) as appliance:
        await appliance.run("warm-up", sell())
        appliance.fault("connection_lost_after", Fault(rate=0.2))
        appliance.fault("connection_lost_before", Fault(rate=0.2))
        for number in range(jobs):
            appliance.journal.submit(f"job-{number:02d}", sell(f"{200 + number}.00"), source="t")
        appliance.engine.wake()
        finished = [await appliance.engine.wait_for(f"job-{n:02d}", 20) for n in range(jobs)]
        assert appliance.documents("sell") == jobs + 1
    assert {job.state for job in finished} == {JobState.FISCALIZED}
    numbers = [job.result["fiscalParams"]["fiscalDocumentNumber"] for job in finished if job.result]
    assert len(set(numbers)) == jobs
    totals = [job.result["fiscalParams"]["total"] for job in finished if job.result]
    assert totals == [200.0 + number for number in range(jobs)]
    assert any(job.result and job.result.get("recovered") for job in finished)
    assert "unexpected error" not in caplog.text, "a fault took the engine off its paths"


async def test_a_call_hung_in_the_middle_of_a_receipt_chain_is_settled_by_the_fd_check(
    tmp_path: Path,
) -> None:
    """Consecutive receipts run back to back in the register thread (engine_chain); the
    per-call timeout still holds for a receipt deep in that run."""
    jobs = 12
    settings = replace(FAST, call_timeout=0.5)
    async with running(tmp_path, settings) as appliance:
        await appliance.run("warm-up", sell())
        appliance.fault("print_delay", Fault(seconds=0.05))
        for number in range(jobs):
            appliance.journal.submit(f"job-{number:02d}", sell(f"{300 + number}.00"), source="t")
        appliance.engine.wake()
        await appliance.engine.wait_for("job-02", 10)
        appliance.fault("print_delay", Fault(seconds=2.0, count=1))
        await wait_until(lambda: appliance.engine.register_call_hung, timeout=5)
        hung = [job.id for job in appliance.journal.all_jobs() if job.state is JobState.BLOCKED]
        assert hung and min(hung) > "job-02", "the hang was not inside the chain"
        appliance.fault("print_delay", None)
        finished = [await appliance.engine.wait_for(f"job-{n:02d}", 10) for n in range(jobs)]
        assert appliance.documents("sell") == jobs + 1
    assert {job.state for job in finished} == {JobState.FISCALIZED}
    recovered = {job.id for job in finished if job.result and job.result.get("recovered")}
    assert set(hung) <= recovered
    totals = [job.result["fiscalParams"]["total"] for job in finished if job.result]
    assert totals == [300.0 + number for number in range(jobs)]


async def test_status_follows_every_receipt_of_a_chain(tmp_path: Path) -> None:
    """Listeners (status file, Bitrix24 write-back) hear of each result as it is committed,
    not once at the end of a run of receipts."""
    seen: list[int] = []
    async with running(tmp_path, replace(FAST, progress_interval=0.01)) as appliance:
        appliance.engine.add_listener(lambda status: seen.append(status.processed))
        await appliance.run("warm-up", sell())
        appliance.fault("print_delay", Fault(seconds=0.06))
        for number in range(10):
            appliance.journal.submit(f"job-{number:02d}", sell(), source="t")
        appliance.engine.wake()
        await appliance.engine.wait_for("job-09", 10)
        done = [appliance.journal.get(f"job-{n:02d}") for n in range(10)]
    assert all(job is not None and job.state is JobState.FISCALIZED for job in done)
    # Without per-receipt progress the count would jump from 1 straight to 11.
    assert len(set(seen) & set(range(2, 11))) >= 5, seen


async def test_a_cancelled_engine_sends_nothing_after_the_receipt_in_flight(
    tmp_path: Path,
) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    register = SimulatorRegister(tmp_path / "simulator")
    engine = Engine(journal, register, FAST)
    set_fault(tmp_path / "simulator", "print_delay", Fault(seconds=0.1))
    for number in range(10):
        journal.submit(f"job-{number:02d}", sell(), source="t")
    worker = asyncio.create_task(engine.run())
    await engine.wait_for("job-01", 10)
    worker.cancel()
    with pytest.raises(asyncio.CancelledError):
        await worker
    await asyncio.sleep(0.5)  # longer than the receipt in flight takes
    state = load_state(tmp_path / "simulator")
    assert state is not None
    printed = state.document_counts["sell"]
    fiscalized = [job for job in journal.all_jobs() if job.state is JobState.FISCALIZED]
    assert len(fiscalized) <= printed <= len(fiscalized) + 1
    assert printed <= 4, f"{printed} of 10 receipts printed after the cancellation"
    await asyncio.sleep(0.3)
    assert load_state(tmp_path / "simulator") == state, "the register kept printing"
    journal.close()
