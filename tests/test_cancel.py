"""Cancelling a job: only one that cannot have reached the register, recorded with who.

Journal.cancel on a real journal file, the race against an engine taking the same job,
and `kassa-appliance jobs cancel` as a script sees it (real processes, a real daemon).
"""

from __future__ import annotations

import getpass
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kassa_appliance.appliance.daemon import journal_path, read_status_file
from kassa_appliance.fiscal.engine_poison import apply_unless_final
from kassa_appliance.fiscal.journal import (
    JobNotCancellable,
    JobState,
    Journal,
    JournalError,
    Transition,
)
from sample_tasks import sell
from test_cli import TIMEOUT, cli, data_dir, sample, sells

__all__ = ["data_dir"]  # the fixture, shared with test_cli


@pytest.fixture
def journal(tmp_path: Path) -> Journal:
    with Journal(tmp_path / "journal.sqlite3") as opened:
        yield opened  # type: ignore[misc]


def test_a_received_job_is_cancelled_with_who_did_it(journal: Journal) -> None:
    journal.submit("order-1", sell(), source="bitrix", needs_report=True)

    cancelled = journal.cancel("order-1", by="cli:anna")

    assert cancelled.state is JobState.FAILED
    assert cancelled.error_code == "cancelled"
    assert cancelled.error_message == "cancelled by cli:anna"
    assert journal.get("order-1") == cancelled
    assert [job.id for job in journal.unreported()] == ["order-1"]  # Bitrix24 hears of it


@pytest.mark.parametrize("state", [JobState.FISCALIZING, JobState.BLOCKED])
def test_a_job_that_may_have_reached_the_register_cannot_be_cancelled(
    journal: Journal, state: JobState
) -> None:
    journal.submit("order-1", sell(), source="cli")
    journal.transition(Transition("order-1", JobState.FISCALIZING, fd_before=7))
    if state is JobState.BLOCKED:
        journal.transition(Transition("order-1", JobState.BLOCKED))

    with pytest.raises(JobNotCancellable) as refused:
        journal.cancel("order-1", by="cli:anna")

    assert str(refused.value).startswith(
        f"job order-1 is {state.value}: it may already have reached the register"
    )
    after = journal.get("order-1")
    assert after is not None and after.state is state and after.error_code is None


def test_a_final_job_cannot_be_cancelled_and_the_message_says_so(journal: Journal) -> None:
    journal.submit("done", {"type": "reportX"}, source="cli")
    journal.transition(Transition("done", JobState.FISCALIZING))
    journal.transition(Transition("done", JobState.FISCALIZED, result={}))
    journal.submit("gone", {}, source="cli")
    journal.cancel("gone", by="first")

    with pytest.raises(JobNotCancellable, match="job done is already fiscalized"):
        journal.cancel("done", by="cli:anna")
    with pytest.raises(JobNotCancellable, match=r"job gone has already failed \(cancelled by"):
        journal.cancel("gone", by="second")
    with pytest.raises(JournalError, match="unknown job 'nope'") as unknown:
        journal.cancel("nope", by="cli:anna")
    assert not isinstance(unknown.value, JobNotCancellable)
    gone = journal.get("gone")
    assert gone is not None and gone.error_message == "cancelled by first"


def test_who_cancelled_is_kept_short_and_printable(journal: Journal) -> None:
    journal.submit("order-1", sell(), source="cli")
    cancelled = journal.cancel("order-1", by="evil\x00\n" + "x" * 10_000)
    assert cancelled.error_message is not None
    assert len(cancelled.error_message) < 250
    assert "\x00" not in cancelled.error_message and "\n" not in cancelled.error_message


def test_a_cancel_racing_the_engine_has_exactly_one_winner(tmp_path: Path) -> None:
    """Each job is either started by the engine or cancelled, never both, never neither."""
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as setup:
        setup.submit_many([(f"job-{n}", sell()) for n in range(200)], source="t")
    started: list[str] = []
    cancelled: list[str] = []
    refused: list[str] = []
    go = threading.Barrier(2)

    def engine_side() -> None:
        with Journal(path) as journal:
            go.wait()
            for n in range(200):
                change = Transition(f"job-{n}", JobState.FISCALIZING, fd_before=1)
                if apply_unless_final(journal, change) is not None:
                    started.append(f"job-{n}")

    def operator_side() -> None:
        with Journal(path) as journal:
            go.wait()
            for n in reversed(range(200)):
                try:
                    journal.cancel(f"job-{n}", by="race")
                    cancelled.append(f"job-{n}")
                except JobNotCancellable as error:
                    assert "may already have reached the register" in str(error)
                    refused.append(f"job-{n}")

    threads = [threading.Thread(target=engine_side), threading.Thread(target=operator_side)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(started + cancelled) == sorted(f"job-{n}" for n in range(200))
    assert not set(started) & set(cancelled)
    assert sorted(refused) == sorted(started)
    with Journal(path) as check:
        states = {job.id: job.state for job in check.all_jobs()}
    assert all(states[job_id] is JobState.FISCALIZING for job_id in started)
    assert all(states[job_id] is JobState.FAILED for job_id in cancelled)


def test_jobs_cancel_from_the_cli_without_a_daemon(data_dir: Path) -> None:
    with Journal(journal_path(data_dir)) as journal:
        journal.submit("queued", sell(), source="cli")
        journal.submit("named", sell(), source="cli")

    done = cli(data_dir, "jobs", "cancel", "queued")
    named = cli(data_dir, "jobs", "cancel", "named", "--by", "manager Olga")
    again = cli(data_dir, "jobs", "cancel", "queued")
    unknown = cli(data_dir, "jobs", "cancel", "nope")

    assert done.returncode == 0, done.stderr
    assert "job queued: failed" in done.stdout
    assert f"error cancelled: cancelled by cli:{getpass.getuser()}" in done.stdout
    assert named.returncode == 0 and "cancelled by manager Olga" in named.stdout
    assert again.returncode == 3 and "has already failed" in again.stderr
    assert unknown.returncode == 2 and "no job with id 'nope'" in unknown.stderr
    assert "Traceback" not in again.stderr + unknown.stderr


def print_sample(folder: Path, job_id: str, *, timeout: float) -> subprocess.CompletedProcess[str]:
    return cli(
        folder, "print", sample("01-sell-cash.json"), "--id", job_id, "--timeout", str(timeout)
    )


def test_jobs_cancel_while_the_daemon_waits_for_paper(data_dir: Path) -> None:
    """The head job is with the register (no paper): it cannot be cancelled; the job
    queued behind it can, and the head prints once the paper is back."""
    assert cli(data_dir, "simulator", "fault", "no_paper").returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SNAP", "KASSA_", "NOTIFY"))}
    daemon = subprocess.Popen(
        [sys.executable, "-m", "kassa_appliance", "--data-dir", str(data_dir), "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + TIMEOUT
        while (read_status_file(data_dir) or {}).get("pid") != daemon.pid:
            assert daemon.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        head = print_sample(data_dir, "head", timeout=1)
        behind = print_sample(data_dir, "behind", timeout=1)
        refused = cli(data_dir, "jobs", "cancel", "head")
        cancelled = cli(data_dir, "jobs", "cancel", "behind", "--by", "test")
        assert cli(data_dir, "simulator", "fault", "no_paper", "--off").returncode == 0
        after = print_sample(data_dir, "after", timeout=30)
        head_now = print_sample(data_dir, "head", timeout=30)
    finally:
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=TIMEOUT) == 0

    assert head.returncode == 4 and behind.returncode == 4, (head.stdout, behind.stdout)
    assert refused.returncode == 3
    assert "job head is fiscalizing: it may already have reached the register" in refused.stderr
    assert cancelled.returncode == 0, cancelled.stderr
    assert "cancelled by test" in cancelled.stdout
    assert after.returncode == 0, after.stdout
    assert head_now.returncode == 0 and "job head: fiscalized" in head_now.stdout
    assert sells(data_dir) == 2
