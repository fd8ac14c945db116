"""The deliveries ledger on real SQLite files: the migration from the previous schema, the
idempotent expectation, every state transition and the ones refused, the local-jobs scan."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from delivery_support import finish_job
from kassa_appliance.channels.delivery.status import SHOWN_FAILURES, delivery_status
from kassa_appliance.fiscal.journal import Journal, JournalError
from kassa_appliance.fiscal.journal_deliveries import (
    AWAITING,
    FAILED,
    PENDING,
    SENDING,
    SENT,
    DeliveryLedger,
    delivery_key,
)
from kassa_appliance.fiscal.journal_schema import MIGRATIONS, SCHEMA_VERSION
from sample_tasks import sell

CHAT = {"kind": "hook", "chat": "c-1"}
MAXCHAT = {"kind": "maxchat", "chat_id": "-100"}
OUTCOME = {"job_id": "j-1", "state": "done", "task": {}, "qr": "t=1"}


def version_1_journal(path: Path) -> None:
    """A journal as the previous release left it: schema 1 with one finished job."""
    raw = sqlite3.connect(path, isolation_level=None)
    for statement in MIGRATIONS[0].split(";"):
        if statement.strip():
            raw.execute(statement)
    raw.execute(
        "INSERT INTO jobs (id, task, state, source, reply, created_at, updated_at)"
        " VALUES ('old-job', '{\"type\":\"sell\"}', 'reported', 'cli',"
        ' \'{"targets":[{"kind":"hook","chat":"c-1"}]}\', 1.0, 2.0)'
    )
    raw.execute("PRAGMA user_version=1")
    raw.close()


def test_the_migration_from_schema_1_keeps_the_jobs_and_adds_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    version_1_journal(path)
    with Journal(path) as journal:
        old = journal.get("old-job")
        assert old is not None and old.reply == {"targets": [CHAT]}
        assert journal.counts_by_state()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,)
    raw.close()
    with DeliveryLedger(path) as ledger:
        jobs, highest = ledger.jobs_with_targets(0)
        assert [job.id for job in jobs] == ["old-job"] and highest == 1
        assert ledger.counts() == {}
        assert ledger.local_cursor() == 1  # jobs finished before the upgrade get no replies


def test_the_ledger_alone_migrates_an_old_journal(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    version_1_journal(path)
    with DeliveryLedger(path) as ledger:
        assert ledger.add("j-1", [CHAT]) == 1
    with Journal(path) as journal:
        assert journal.get("old-job") is not None


def test_a_journal_newer_than_this_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    Journal(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    raw.close()
    with pytest.raises(JournalError, match="newer than this version"):
        DeliveryLedger(path)


def test_expect_is_idempotent_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with DeliveryLedger(path) as ledger:
        assert ledger.add("j-1", [CHAT, MAXCHAT], kassa="k-2", expected=True) == 2
        assert ledger.add("j-1", [CHAT, MAXCHAT], kassa="k-2", expected=True) == 0
        assert ledger.add("j-1", [MAXCHAT], kassa="k-2", expected=True) == 0  # same target
    with DeliveryLedger(path) as ledger:
        rows = ledger.for_job("j-1")
        assert [(r.kind, r.state, r.kassa, r.expected) for r in rows] == [
            ("hook", AWAITING, "k-2", True),
            ("maxchat", AWAITING, "k-2", True),
        ]
        assert ledger.awaiting()[0][:2] == ("j-1", "k-2")


def test_the_local_job_and_the_expectation_of_one_target_are_one_delivery(
    tmp_path: Path,
) -> None:
    with DeliveryLedger(tmp_path / "journal.sqlite3") as ledger:
        ledger.add("j-1", [CHAT], kassa="k-1", expected=True)
        assert ledger.add("j-1", [{"chat": "c-1", "kind": "hook"}], outcome=OUTCOME) == 0
        (row,) = ledger.for_job("j-1")
        assert row.state == PENDING and row.outcome == OUTCOME
        assert ledger.resolve("j-1", {"state": "failed"}) == 0  # known outcomes stay


def test_each_transition_is_committed_and_illegal_ones_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with DeliveryLedger(path) as ledger:
        ledger.add("j-1", [CHAT], outcome=OUTCOME)
        key = delivery_key("j-1", CHAT)
        assert ledger.due(0.0, ["hook"]) == []  # not due before its time
        (due,) = ledger.due(1e12, ["hook"])
        assert due.key == key and ledger.due(1e12, ["other"]) == []
        sending = ledger.mark_sending(key)
        assert (sending.state, sending.attempts) == (SENDING, 1)
        retry = ledger.mark_retry(key, "503 from the recipient", 5e11)
        assert (retry.state, retry.last_error, retry.next_attempt_at) == (
            PENDING,
            "503 from the recipient",
            5e11,
        )
        assert ledger.next_due_at(["hook"]) == 5e11
        assert ledger.mark_sending(key).attempts == 2
    with DeliveryLedger(path) as ledger:  # "sending" is on disk: a new worker sees it
        (left,) = ledger.due(0.0, ["hook"])
        assert left.state == SENDING and ledger.due(0.0, ["hook"], exclude=[key]) == []
        sent = ledger.mark_sent(key, "message 42")
        assert (sent.state, sent.sent_ref, sent.last_error) == (SENT, "message 42", None)
        with pytest.raises(JournalError, match="cannot move from sent"):
            ledger.mark_sending(key)
        with pytest.raises(JournalError, match="cannot move from sent"):
            ledger.mark_failed(key, "too late")
        with pytest.raises(JournalError, match="unknown delivery"):
            ledger.mark_sent("nope", "x")
        assert ledger.counts() == {SENT: 1}


def test_failures_keep_their_reason_and_are_listed_latest_first(tmp_path: Path) -> None:
    with DeliveryLedger(tmp_path / "journal.sqlite3") as ledger:
        ledger.add("j-1", [CHAT, MAXCHAT], outcome=OUTCOME)
        ledger.add("j-2", [CHAT], kassa="k-9", expected=True)
        ledger.mark_sending(delivery_key("j-1", CHAT))
        ledger.mark_failed(delivery_key("j-1", CHAT), "chat deleted")
        assert ledger.fail_job("j-2", "no item") == 1
        failed = ledger.recent_failed()
        assert [(r.job_id, r.last_error) for r in failed] == [
            ("j-2", "no item"),
            ("j-1", "chat deleted"),
        ]
        assert ledger.counts() == {FAILED: 2, PENDING: 1}
        assert ledger.open_by_kind() == {"maxchat": 1}


def test_a_target_without_a_kind_is_failed_at_once_with_the_reason(tmp_path: Path) -> None:
    with DeliveryLedger(tmp_path / "journal.sqlite3") as ledger:
        ledger.add("j-1", ["just text", {"chat": "x"}, CHAT], outcome=OUTCOME)
        rows = ledger.for_job("j-1")
        assert [r.state for r in rows] == [FAILED, FAILED, PENDING]
        assert rows[0].last_error is not None and "reply target #1" in rows[0].last_error


def test_the_scan_sees_jobs_with_targets_final_or_not(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with Journal(path) as journal, DeliveryLedger(path) as ledger:
        finish_job(journal, "a", [CHAT])
        finish_job(journal, "b", None)
        journal.submit("c", sell(), source="test", reply={"targets": [MAXCHAT]})
        finish_job(journal, "d", [CHAT], fail="no paper")
        jobs, highest = ledger.jobs_with_targets(0)
        assert [(j.id, j.state.is_final) for j in jobs] == [("a", True), ("c", False), ("d", True)]
        assert highest == 4
        assert ledger.jobs_with_targets(0, limit=2)[1] == 3  # a full page: only as far as read
        ledger.set_local_cursor(2)
        assert ledger.local_cursor() == 2
        assert [j.id for j in ledger.local_final_jobs(["a", "c", "zz"])] == ["a"]
        assert ledger.known_jobs(["a", "c", "zz"]) == {"a", "c"}


@given(
    job_id=st.text(min_size=1, max_size=300).filter(lambda s: "\x00" not in s),
    target=st.dictionaries(st.text(max_size=10), st.text(max_size=10) | st.integers()),
)
def test_keys_are_short_safe_and_stable(job_id: str, target: dict[str, object]) -> None:
    key = delivery_key(job_id, {"kind": "hook", **target})
    assert len(key) <= 64 and re.fullmatch(r"[A-Za-z0-9:_-]+", key)
    assert key == delivery_key(job_id, dict(reversed(list({"kind": "hook", **target}.items()))))
    assert key != delivery_key(job_id + "x", {"kind": "hook", **target})


def test_status_counts_every_failure_and_lists_only_the_latest(tmp_path: Path) -> None:
    with DeliveryLedger(tmp_path / "journal.sqlite3") as ledger:
        for number in range(SHOWN_FAILURES + 5):
            target = {"kind": "hook", "chat": f"c-{number}"}
            ledger.add("j-1", [target], outcome=OUTCOME)
            ledger.mark_failed(delivery_key("j-1", target), f"chat c-{number} deleted")
        ledger.add("j-2", [MAXCHAT], outcome=OUTCOME)
        status = delivery_status(ledger, senders=["hook"], remote=False)
    assert status["failed"] == SHOWN_FAILURES + 5 and len(status["failures"]) == SHOWN_FAILURES
    assert status["failures"][0]["reason"] == f"chat c-{SHOWN_FAILURES + 4} deleted"
    assert status["waiting"] == ["no sender for maxchat (1)"] and status["pending"] == 1
