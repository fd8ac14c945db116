"""Poison jobs: one job the engine cannot handle fails alone, and the queue goes on.

Real journal file, real engine, the simulator register (fixtures of test_engine).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from kassa_appliance.fiscal import engine as engine_module
from kassa_appliance.fiscal.engine import Engine
from kassa_appliance.fiscal.journal import JobState, Journal, Transition
from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.registers.simulator_state import load_state
from sample_tasks import sell
from test_engine import FAST, running


def nested(depth: int) -> dict[str, Any]:
    """An object ``depth`` levels deep: {"a": {"a": … {}}}."""
    value: dict[str, Any] = {}
    for _ in range(depth):
        value = {"a": value}
    return value


def deep_company_info_sell(depth: int = 600) -> dict[str, Any]:
    task = sell()
    task["companyInfo"] = nested(depth)
    return task


async def test_bad_jobs_fail_with_their_reason_and_the_valid_sell_behind_them_prints(
    tmp_path: Path,
) -> None:
    bad: dict[str, Any] = {
        "type-list": {"type": []},
        "type-object": {"type": {}},
        "deep-company-info": deep_company_info_sell(),
    }
    async with running(tmp_path) as appliance:
        for job_id, task in bad.items():
            await appliance.submit(job_id, task)
        good = await appliance.run("good", sell("10.00"), timeout=20)
        jobs = {job_id: appliance.journal.get(job_id) for job_id in bad}
        assert appliance.documents("sell") == 1

    assert good.state is JobState.FISCALIZED, good
    for job_id, job in jobs.items():
        assert job is not None and job.state is JobState.FAILED, (job_id, job)
        assert job.error_message, job_id
        assert "Traceback" not in job.error_message
    for job_id in ("type-list", "type-object"):
        job = jobs[job_id]
        assert job is not None and job.error_code == "invalid-task"
        assert job.error_message is not None and "type: expected one of sell" in job.error_message
        assert "unhashable" not in job.error_message
    deep = jobs["deep-company-info"]
    assert deep is not None and deep.error_code in {"invalid-task", "internal-error"}
    if deep.error_code == "internal-error":
        assert deep.error_message is not None
        assert deep.error_message.startswith("internal error while ")


async def test_a_bad_job_behind_a_receipt_chain_ends_the_chain_and_fails_alone(
    tmp_path: Path,
) -> None:
    """The chain prepares the next queue head in the register thread."""
    async with running(tmp_path) as appliance:
        appliance.journal.submit_many(
            [
                ("first", sell("1.00")),
                ("second", sell("2.00")),
                ("deep", deep_company_info_sell()),
                ("type-list", {"type": []}),
                ("third", sell("3.00")),
            ],
            source="test",
        )
        appliance.engine.wake()
        third = await appliance.engine.wait_for("third", 20)
        states = {job.id: job.state for job in appliance.journal.all_jobs()}
        assert appliance.documents("sell") == 3

    assert third.state is JobState.FISCALIZED
    assert states == {
        "first": JobState.FISCALIZED,
        "second": JobState.FISCALIZED,
        "deep": JobState.FAILED,
        "type-list": JobState.FAILED,
        "third": JobState.FISCALIZED,
    }


def fail_to_prepare_totals_of(monkeypatch: pytest.MonkeyPatch, total: float) -> None:
    """Fault injection: building the driver task raises for receipts of ``total``.

    Once every door checks the input limits no JSON input is known to do this; the
    engine must still survive the bug nobody knows yet, so one is put in its path.
    """
    real = engine_module.to_driver_json

    def broken(task: Any) -> dict[str, Any]:
        driver_task = real(task)
        if driver_task.get("total") == total:
            raise RecursionError("maximum recursion depth exceeded")
        return driver_task

    monkeypatch.setattr(engine_module, "to_driver_json", broken)


def store_as_fiscalizing(
    path: Path, job_id: str, task: Any, *, its_own_receipt: bool = False
) -> None:
    """Store ``job_id`` as an engine that crashed while sending it would have left it:
    ``fiscalizing`` with the register's FD number before it (the latest receipt's, or the
    one before when that receipt is the job's own). No engine runs meanwhile."""
    with Journal(path) as journal:
        receipts = [job for job in journal.all_jobs() if job.result and job.task_type == "sell"]
        result = receipts[-1].result
        assert result is not None
        fd = int(result["fiscalParams"]["fiscalDocumentNumber"])
        journal.submit(job_id, task, source="test")
        fd_before = fd - 1 if its_own_receipt else fd
        journal.transition(Transition(job_id, JobState.FISCALIZING, fd_before=fd_before))


async def test_a_job_past_received_that_cannot_be_prepared_is_settled_by_the_fd_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A `fiscalizing` job may have reached the register: it is never failed blindly.

    The FD check runs first: the register has no receipt for "unsent" (its FD number did
    not grow), so failing it is safe; "printed" is the register's last receipt, so it is
    recorded as fiscalised, not failed. "typeless" has no task type, so the engine can
    never have sent it: it fails without a spin. The queue goes on behind them.
    """
    async with running(tmp_path) as appliance:
        await appliance.run("warm-up", sell("1.00"))
    journal_file = tmp_path / "journal.sqlite3"
    store_as_fiscalizing(journal_file, "printed", sell("1.00"), its_own_receipt=True)
    store_as_fiscalizing(journal_file, "unsent", sell("2.00"))
    store_as_fiscalizing(journal_file, "typeless", {"type": []})
    fail_to_prepare_totals_of(monkeypatch, 1.0)
    fail_to_prepare_totals_of(monkeypatch, 2.0)
    async with running(tmp_path) as appliance:
        after = await appliance.run("after", sell("3.00"), timeout=20)
        jobs = {job.id: job for job in appliance.journal.all_jobs()}
        assert appliance.documents("sell") == 2

    assert after.state is JobState.FISCALIZED
    assert jobs["printed"].state is JobState.FISCALIZED
    assert jobs["printed"].result is not None and jobs["printed"].result["recovered"]
    unsent = jobs["unsent"]
    assert unsent.state is JobState.FAILED and unsent.error_code == "internal-error"
    assert unsent.error_message == (
        "internal error while preparing the driver task; the details are in the appliance "
        "log; the register has no receipt for it (FD check), so nothing printed"
    )
    typeless = jobs["typeless"]
    assert typeless.state is JobState.FAILED and typeless.error_code == "invalid-task"


async def test_an_internal_error_on_a_received_job_fails_it_and_the_log_has_the_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fail_to_prepare_totals_of(monkeypatch, 2.0)
    async with running(tmp_path) as appliance:
        await appliance.submit("poison", sell("2.00"))
        after = await appliance.run("after", sell("3.00"), timeout=20)
        poison = appliance.journal.get("poison")
        assert appliance.documents("sell") == 1

    assert after.state is JobState.FISCALIZED
    assert poison is not None and poison.state is JobState.FAILED
    assert poison.error_code == "internal-error"
    assert poison.error_message == (
        "internal error while preparing the driver task; the details are in the appliance log"
    )
    logged = [r for r in caplog.records if r.exc_info and "poison" in r.getMessage()]
    assert logged and logged[0].exc_info is not None
    assert logged[0].exc_info[0] is RecursionError


async def test_a_job_cancelled_while_the_engine_takes_it_is_skipped(tmp_path: Path) -> None:
    """The engine read the job as `received`; the cancel commits first: no crash, no retry.

    The engine's own step for one job is driven directly, to hold the moment between
    reading the job and moving it on.
    """
    journal = Journal(tmp_path / "journal.sqlite3")
    engine = Engine(journal, SimulatorRegister(tmp_path / "simulator"), FAST)
    stale = {
        task_id: journal.submit(task_id, task, source="test")[0]
        for task_id, task in (("sell", sell()), ("report", {"type": "reportX"}), ("bad", {}))
    }
    for task_id in stale:
        journal.cancel(task_id, by="test")
    await engine._ensure_ready()
    for job in stale.values():
        await engine._work(job)  # the stale view: still `received`
    state = load_state(tmp_path / "simulator")
    worker = asyncio.create_task(engine.run())
    journal.submit("next", sell("3.00"), source="test")
    engine.wake()
    after = await engine.wait_for("next", 20)
    await engine.stop()
    await asyncio.wait_for(worker, 30)
    jobs = {job.id: job for job in journal.all_jobs()}
    journal.close()

    assert state is not None and state.document_counts.get("sell", 0) == 0
    assert state.document_counts.get("reportX", 0) == 0
    assert after.state is JobState.FISCALIZED
    for task_id in stale:
        assert jobs[task_id].state is JobState.FAILED
        assert jobs[task_id].error_code == "cancelled"
        assert jobs[task_id].error_message == "cancelled by test"


async def test_many_bad_jobs_never_spin_or_stop_the_queue(tmp_path: Path) -> None:
    async with running(tmp_path) as appliance:
        for number in range(20):
            await appliance.submit(f"bad-{number}", {"type": [number]})
        good = await appliance.run("good", sell(), timeout=20)
    assert good.state is JobState.FISCALIZED


async def test_a_received_job_that_keeps_raising_is_failed_after_three_tries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault injection further on than preparing: starting the job raises every time."""
    real = engine_module.apply_unless_final
    tries: list[str] = []

    def broken(journal: Journal, change: Transition) -> Any:
        if change.job_id == "stubborn" and change.state is JobState.FISCALIZING:
            tries.append(change.job_id)
            raise RuntimeError("bug while starting the job")
        return real(journal, change)

    monkeypatch.setattr(engine_module, "apply_unless_final", broken)
    async with running(tmp_path) as appliance:
        await appliance.submit("stubborn", sell("2.00"))
        after = await appliance.run("after", sell("3.00"), timeout=20)
        stubborn = appliance.journal.get("stubborn")
        assert appliance.documents("sell") == 1

    assert after.state is JobState.FISCALIZED
    assert len(tries) == 3  # bounded: no retry for ever, no spinning
    assert stubborn is not None and stubborn.state is JobState.FAILED
    assert stubborn.error_code == "internal-error"
    assert stubborn.error_message == (
        "internal error while processing the job; the details are in the appliance log; "
        "it failed 3 times and never reached the register"
    )
