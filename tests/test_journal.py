"""The journal: idempotent submission, legal transitions, durability across connections."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from kassa_appliance.fiscal.journal import JobState, Journal, JournalError, Transition

SELL = {"type": "sell", "total": 10}


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(tmp_path / "journal.sqlite3") as opened:
        yield opened


def test_submitting_a_known_id_returns_the_stored_job_and_creates_nothing(
    journal: Journal,
) -> None:
    _, created = journal.submit("job-1", SELL, source="cli")
    again, created_again = journal.submit("job-1", {"type": "reportX"}, source="bitrix")

    assert created is True
    assert created_again is False
    assert again.task == SELL
    assert again.source == "cli"
    assert len(journal.all_jobs()) == 1


def test_jobs_come_out_in_arrival_order(journal: Journal) -> None:
    journal.submit_many([("b", SELL), ("a", SELL), ("c", SELL)], source="cli")
    journal.transition(Transition("b", JobState.FAILED, error_code="x", error_message="y"))

    pending = journal.next_pending()
    assert pending is not None and pending.id == "a"
    after_a = journal.next_pending(after_seq=pending.seq)
    assert after_a is not None and after_a.id == "c"


def test_the_state_machine_refuses_illegal_transitions(journal: Journal) -> None:
    journal.submit("job", SELL, source="cli")
    with pytest.raises(JournalError, match="illegal transition received → fiscalized"):
        journal.transition(Transition("job", JobState.FISCALIZED, result={}))
    journal.transition(Transition("job", JobState.FISCALIZING, fd_before=7))
    journal.transition(Transition("job", JobState.FISCALIZED, result={"fiscalParams": {}}))
    with pytest.raises(JournalError, match="illegal transition fiscalized → fiscalizing"):
        journal.transition(Transition("job", JobState.FISCALIZING, fd_before=8))


def test_a_batch_of_transitions_is_all_or_nothing(journal: Journal) -> None:
    journal.submit_many([("one", SELL), ("two", SELL)], source="cli")
    with pytest.raises(JournalError):
        journal.apply(
            [
                Transition("one", JobState.FISCALIZING, fd_before=1),
                Transition("two", JobState.REPORTED),
            ]
        )
    one = journal.get("one")
    assert one is not None and one.state is JobState.RECEIVED and one.fd_before is None


def test_committed_state_is_visible_to_a_new_connection(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as writer:
        writer.submit("job", SELL, source="cli", needs_report=True, created_by=17)
        writer.transition(Transition("job", JobState.FISCALIZING, fd_before=41))
    with Journal(path) as reader:
        job = reader.get("job")
    assert job is not None
    assert (job.state, job.fd_before, job.created_by) == (JobState.FISCALIZING, 41, 17)


def test_durability_settings_are_wal_and_full_sync(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path):
        pass
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    raw.close()


def test_unreported_lists_final_jobs_that_must_be_written_back(journal: Journal) -> None:
    journal.submit("local", SELL, source="cli")
    journal.submit("remote-ok", SELL, source="bitrix", needs_report=True)
    journal.submit("remote-bad", SELL, source="bitrix", needs_report=True)
    journal.submit("remote-pending", SELL, source="bitrix", needs_report=True)
    for job_id in ("local", "remote-ok"):
        journal.transition(Transition(job_id, JobState.FISCALIZING, fd_before=1))
        journal.transition(Transition(job_id, JobState.FISCALIZED, result={}))
    journal.transition(Transition("remote-bad", JobState.FAILED, error_code="e", error_message="m"))

    assert [job.id for job in journal.unreported()] == ["remote-ok", "remote-bad"]
    assert journal.mark_reported("remote-ok").state is JobState.REPORTED
    failed = journal.mark_reported("remote-bad")
    assert failed.state is JobState.FAILED and failed.reported_at is not None
    assert journal.unreported() == []
    with pytest.raises(JournalError, match="only final jobs report"):
        journal.mark_reported("remote-pending")


def test_a_journal_from_a_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version=99")
    raw.close()
    with pytest.raises(JournalError, match="schema 99, newer than this version"):
        Journal(path)
