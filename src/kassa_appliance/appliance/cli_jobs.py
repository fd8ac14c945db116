"""The CLI commands that run or inspect jobs: `print`, `shift`, `report`, `jobs`, `jobs cancel`.

Owns the exit codes scripts rely on (documented in :mod:`kassa_appliance.cli`) and
:class:`CliError` carrying one, reading a task file within the input limits, putting a
job in the journal and waiting for its outcome (:func:`submit_and_wait`: the daemon does
the work, or this process for this one job when no daemon is up), and printing the
outcome. ``kassa_appliance.cli`` is the argparse front that dispatches to the ``cmd_*``
functions here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from kassa_appliance.appliance.config import load_config
from kassa_appliance.appliance.daemon import (
    EngineBusy,
    engine_lock,
    journal_path,
    running_engine,
)
from kassa_appliance.appliance.job_display import describe_job, job_as_json
from kassa_appliance.fiscal.journal import Job, JobState, Journal

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_JOB_FAILED = 3
EXIT_PENDING = 4
EXIT_NOT_CONFIGURED = 5

DAEMON_POLL_SECONDS = 0.2


def _read_task(source: str) -> Any:
    """The task in file ``source`` (``-``: standard input), read as bytes and decoded within
    the input limits (:mod:`kassa_appliance.inputs`): UTF-8 JSON, size, depth, numbers,
    valid Unicode. Anything else is a usage error (exit 2) with one line saying why."""
    from kassa_appliance.inputs import MAX_TASK_BYTES, InputRejected, decode_json_bytes

    name = "standard input" if source == "-" else source
    try:
        if source == "-":
            data = sys.stdin.buffer.read(MAX_TASK_BYTES + 1)
        else:
            with open(source, "rb") as file:
                data = file.read(MAX_TASK_BYTES + 1)
    except OSError as error:
        raise CliError(EXIT_USAGE, f"cannot read {source}: {error.strerror}") from None
    if len(data) > MAX_TASK_BYTES:
        raise CliError(
            EXIT_USAGE,
            f"{name}: more than {MAX_TASK_BYTES:,} bytes is too large; "
            f"expected at most {MAX_TASK_BYTES:,} bytes",
        )
    try:
        return decode_json_bytes(data, name)
    except InputRejected as error:
        raise CliError(EXIT_USAGE, str(error)) from None


class CliError(Exception):
    def __init__(self, exit_code: int, message: str):
        super().__init__(message)
        self.exit_code = exit_code


async def submit_and_wait(
    data_dir: Path, job_id: str, task: Any, *, source: str, timeout: float
) -> tuple[Job, bool]:
    """Put a job in the journal and wait for its outcome.

    If the daemon runs it does the work and we watch the journal; otherwise this process
    takes the engine lock and runs the queue itself, and holds the lock for this one job
    only: the engine stops the moment the job is final (before it could take the next
    job) or when ``timeout`` has passed (after the step in flight), so a daemon waiting
    for the lock starts at once. Jobs queued before ours are worked first (the queue is
    first in, first out).
    """
    from kassa_appliance.appliance.daemon import one_job_settings, stop_once_final

    config = load_config(data_dir)
    with Journal(journal_path(data_dir)) as journal:
        job, created = journal.submit(job_id, task, source=source)
        if job.state.is_final:
            return job, created
    try:
        with engine_lock(data_dir):
            async with running_engine(config, data_dir, one_job_settings(config)) as engine:
                engine.add_listener(stop_once_final(engine, job_id))
                engine.wake()
                return await engine.wait_for(job_id, timeout), created
    except EngineBusy:
        return await _watch_journal(data_dir, job_id, timeout), created


async def _watch_journal(data_dir: Path, job_id: str, timeout: float) -> Job:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    with Journal(journal_path(data_dir)) as journal:
        while True:
            job = journal.get(job_id)
            assert job is not None
            if job.state.is_final or loop.time() >= deadline:
                return job
            await asyncio.sleep(DAEMON_POLL_SECONDS)


def job_exit_code(job: Job) -> int:
    if job.state is JobState.FAILED:
        return EXIT_JOB_FAILED
    if job.state.is_final:
        return EXIT_OK
    return EXIT_PENDING


def _run_task(args: argparse.Namespace, task: Any, source: str) -> int:
    job_id = args.id or str(uuid.uuid4())
    job, created = asyncio.run(
        submit_and_wait(args.data_dir, job_id, task, source=source, timeout=args.timeout)
    )
    if args.json:
        print(json.dumps({**job_as_json(job), "new": created}, ensure_ascii=False, indent=2))
    else:
        if not created:
            print(f"job {job.id} was already submitted; showing the stored outcome")
        print(describe_job(job))
        if job.qr:
            _print_qr(job.qr)
        if not job.state.is_final:
            print(
                f"not finished within {args.timeout:g} s; it stays queued "
                f"(check with `kassa-appliance jobs`)"
            )
    return job_exit_code(job)


def _print_qr(text: str) -> None:
    from kassa_appliance.registers.tape import qr_lines

    print("\n".join(qr_lines(text)))


def cmd_print(args: argparse.Namespace) -> int:
    return _run_task(args, _read_task(args.file), source="cli")


def cmd_shift(args: argparse.Namespace) -> int:
    task_type = {"open": "openShift", "close": "closeShift"}[args.action]
    return _run_task(args, {"type": task_type}, source="cli")


def cmd_report(args: argparse.Namespace) -> int:
    return _run_task(args, {"type": "reportX"}, source="cli")


def cmd_jobs(args: argparse.Namespace) -> int:
    state = JobState(args.state) if args.state else None
    with Journal(journal_path(args.data_dir)) as journal:
        jobs = journal.recent(args.limit, state)
    if args.json:
        print(json.dumps([job_as_json(job) for job in jobs], ensure_ascii=False, indent=2))
        return EXIT_OK
    if not jobs:
        print("no jobs")
    for job in jobs:
        detail = job.error_code or job.wait_reason or ""
        print(f"{job.id:<38} {job.task_type or '?':<20} {job.state.value:<12} {detail}")
    return EXIT_OK


def cmd_jobs_cancel(args: argparse.Namespace) -> int:
    """Only writes the journal, so it works while a daemon runs: the cancel is atomic
    against the engine taking the job (Journal.cancel)."""
    from kassa_appliance.fiscal.journal import JobNotCancellable, JournalError

    by = args.by or f"cli:{_user_name()}"
    with Journal(journal_path(args.data_dir)) as journal:
        try:
            job = journal.cancel(args.job_id, by=by)
        except JobNotCancellable as refused:
            raise CliError(EXIT_JOB_FAILED, str(refused)) from None
        except JournalError:
            raise CliError(EXIT_USAGE, f"no job with id {args.job_id!r} in the journal") from None
    print(describe_job(job))
    return EXIT_OK


def _user_name() -> str:
    import getpass
    import os

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no name for this uid (e.g. a bare container)
        return f"uid {os.getuid()}"
