"""The `kassa-appliance` command line.

Exit codes scripts can rely on:

====  ==========================================================================
0     done: the job is fiscalised (or the query answered)
1     unexpected internal error
2     bad usage or unreadable input (not JSON, missing file)
3     the job failed definitively (invalid task, register refused it); see message
4     the job is accepted but not finished within --timeout (e.g. no paper); it
      stays in the journal and will be finished later
5     the appliance is not configured for this (e.g. register.driver unset)
====  ==========================================================================
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

from kassa_appliance.appliance.config import ConfigSchemaError, default_data_dir, load_config
from kassa_appliance.appliance.daemon import (
    CLI_HOLDER,
    EngineBusy,
    describe_lock_holder,
    engine_lock,
    journal_path,
    lock_holder_role,
    read_status_file,
    run_daemon,
    run_without_config,
    running_engine,
)
from kassa_appliance.bitrix.pairing import pairing_status
from kassa_appliance.fiscal.journal import Job, JobState, Journal
from kassa_appliance.registers.factory import RegisterNotConfigured

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_JOB_FAILED = 3
EXIT_PENDING = 4
EXIT_NOT_CONFIGURED = 5

DEFAULT_WAIT_SECONDS = 120.0
DAEMON_POLL_SECONDS = 0.2

# Modules that contribute subcommands: each exposes register_cli(subparsers).
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "kassa_appliance.testbeds.demo",
    "kassa_appliance.registers.simulator_cli",
    "kassa_appliance.testbeds.bitrix24.cli",
    "kassa_appliance.testbeds.webrequests.cli",
)


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


def describe_job(job: Job) -> str:
    lines = [f"job {job.id}: {job.state.value}"]
    if job.error_code:
        lines.append(f"  error {job.error_code}: {job.error_message}")
    if job.wait_reason and not job.state.is_final:
        lines.append(f"  waiting: {job.wait_reason}")
    params = (job.result or {}).get("fiscalParams")
    if isinstance(params, dict):
        lines.append("  " + describe_fiscal_params(params))
    elif job.result:
        lines.append("  " + json.dumps(job.result, ensure_ascii=False))
    if job.qr:
        lines.append(f"  QR: {job.qr}")
    return "\n".join(lines)


def describe_fiscal_params(params: dict[str, Any]) -> str:
    """One line with what a receipt's fiscal block says."""
    return "ФД {fd}  ФП {fp}  ФН {fn}  смена {shift}  чек {receipt}  сумма {total}".format(
        fd=params.get("fiscalDocumentNumber"),
        fp=params.get("fiscalDocumentSign"),
        fn=params.get("fnNumber"),
        shift=params.get("shiftNumber"),
        receipt=params.get("fiscalReceiptNumber", "-"),
        total=_money(params.get("total")),
    )


def _money(value: object) -> str:
    """Driver JSON carries money as numbers; show it the way a receipt does."""
    if value is None:
        return "-"
    return f"{Decimal(str(value)):.2f}"


def job_exit_code(job: Job) -> int:
    if job.state is JobState.FAILED:
        return EXIT_JOB_FAILED
    if job.state.is_final:
        return EXIT_OK
    return EXIT_PENDING


def job_as_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "state": job.state.value,
        "source": job.source,
        "type": job.task_type,
        "result": job.result,
        "qr": job.qr,
        "error": None
        if job.error_code is None
        else {"code": job.error_code, "message": job.error_message},
        "waiting": job.wait_reason,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }


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


def cmd_status(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir
    config = load_config(data_dir)
    status: dict[str, Any] = {
        "data_dir": str(data_dir),
        "register_driver": config.register.driver,
        "kassa_id": config.kassa.id,
        **pairing_status(config.bitrix, data_dir),  # bitrix_paired (+ why not, from the daemon)
    }
    with Journal(journal_path(data_dir)) as journal:
        status["jobs"] = {state.value: n for state, n in journal.counts_by_state().items()}
        status["queue_depth"] = journal.pending_count()
    try:
        with engine_lock(data_dir):
            status["daemon"] = "not running"
    except EngineBusy:
        if lock_holder_role(data_dir) == CLI_HOLDER:
            holder = describe_lock_holder(data_dir)
            status["daemon"] = f"not driving the register now: {holder} holds it"
        else:
            status["daemon"] = "running"
            engine = read_status_file(data_dir)
            if engine is not None and "link" in engine:
                status["link"] = engine.pop("link")  # the Bitrix24 link's health
            status["engine"] = engine
    if args.json:
        print(json.dumps(status, ensure_ascii=False, indent=2, default=str))
    else:
        for key, value in status.items():
            print(f"{key}: {value}")
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.data_dir)
    except ConfigSchemaError as error:
        return asyncio.run(run_without_config(str(error)))
    return asyncio.run(run_daemon(config, args.data_dir))


def _add_wait_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--id", help="idempotency key (default: a new UUID); a known id prints nothing again"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_WAIT_SECONDS,
        help="seconds to wait for the outcome (default %(default)s)",
    )
    parser.add_argument("--json", action="store_true", help="print the outcome as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kassa-appliance",
        description="Cloud cash register appliance: Bitrix24 → Atol fiscal register.",
        epilog="Exit codes: 0 done, 1 internal error, 2 bad input, 3 job failed, "
        "4 still pending after --timeout, 5 not configured.",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="state directory (default: $KASSA_DATA_DIR, $SNAP_DATA or "
        "~/.local/share/kassa-appliance)",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the appliance daemon in the foreground")
    run.set_defaults(handler=cmd_run)

    print_cmd = sub.add_parser(
        "print", help="fiscalise an Atol JSON task (file or - for stdin) and show the result"
    )
    print_cmd.add_argument("file", help="path to the task JSON, or - to read standard input")
    _add_wait_options(print_cmd)
    print_cmd.set_defaults(handler=cmd_print)

    status = sub.add_parser("status", help="show configuration, daemon and queue state")
    status.add_argument("--json", action="store_true")
    status.set_defaults(handler=cmd_status)

    jobs = sub.add_parser("jobs", help="list recent jobs and their states")
    jobs.add_argument("--limit", type=int, default=20)
    jobs.add_argument("--state", choices=[state.value for state in JobState])
    jobs.add_argument("--json", action="store_true")
    jobs.set_defaults(handler=cmd_jobs)
    jobs_sub = jobs.add_subparsers(dest="jobs_command", metavar="ACTION")
    cancel = jobs_sub.add_parser(
        "cancel",
        help="cancel a job that has not reached the register yet (it fails as cancelled)",
    )
    cancel.add_argument("job_id", metavar="ID", help="the job's id (see `kassa-appliance jobs`)")
    cancel.add_argument(
        "--by", help="who cancels it, recorded with the job (default: cli:<your user name>)"
    )
    cancel.set_defaults(handler=cmd_jobs_cancel)

    shift = sub.add_parser("shift", help="open or close the shift (close prints the Z report)")
    shift.add_argument("action", choices=["open", "close"])
    _add_wait_options(shift)
    shift.set_defaults(handler=cmd_shift)

    report = sub.add_parser("report", help="print a report")
    report.add_argument("kind", choices=["x"], help="x: the X report (shift totals, no FD)")
    _add_wait_options(report)
    report.set_defaults(handler=cmd_report)

    for module_name in SUBCOMMAND_MODULES:
        module = importlib.import_module(module_name)
        module.register_cli(sub)
    return parser


def exit_code_for_closed_output() -> int:
    """Python's own convention for output closed by the reader (as after SIGPIPE)."""
    try:
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - nothing more reaches the pipe
    except OSError:
        pass
    return 141


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.data_dir is None:
        args.data_dir = default_data_dir()
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        exit_code: int = args.handler(args)
    except CliError as error:
        print(f"kassa-appliance: {error}", file=sys.stderr)
        return error.exit_code
    except (RegisterNotConfigured, ConfigSchemaError) as error:
        print(f"kassa-appliance: {error}", file=sys.stderr)
        return EXIT_NOT_CONFIGURED
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. `kassa-appliance jobs | head`: the reader left
        sys.stderr.close()
        return exit_code_for_closed_output()
    return exit_code
