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

This module is the argparse front: the parser, ``main`` and the exit code of each outcome,
plus `run` and `status`. The job commands (`print`, `shift`, `report`, `jobs`) are in
:mod:`kassa_appliance.appliance.cli_jobs`, how a job is shown in
:mod:`kassa_appliance.appliance.job_display`; their names are re-exported here.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from kassa_appliance.appliance.cli_check import add_check_parser
from kassa_appliance.appliance.cli_jobs import (
    DAEMON_POLL_SECONDS,
    EXIT_ERROR,
    EXIT_JOB_FAILED,
    EXIT_NOT_CONFIGURED,
    EXIT_OK,
    EXIT_PENDING,
    EXIT_USAGE,
    CliError,
    cmd_jobs,
    cmd_jobs_cancel,
    cmd_print,
    cmd_report,
    cmd_shift,
    job_exit_code,
    submit_and_wait,
)
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
)
from kassa_appliance.appliance.job_display import (
    describe_fiscal_params,
    describe_job,
    job_as_json,
)
from kassa_appliance.bitrix.pairing import pairing_status
from kassa_appliance.fiscal.journal import JobState, Journal
from kassa_appliance.registers.factory import RegisterNotConfigured

__all__ = [
    "DAEMON_POLL_SECONDS",
    "DEFAULT_WAIT_SECONDS",
    "EXIT_ERROR",
    "EXIT_JOB_FAILED",
    "EXIT_NOT_CONFIGURED",
    "EXIT_OK",
    "EXIT_PENDING",
    "EXIT_USAGE",
    "SUBCOMMAND_MODULES",
    "CliError",
    "build_parser",
    "cmd_jobs",
    "cmd_jobs_cancel",
    "cmd_print",
    "cmd_report",
    "cmd_run",
    "cmd_shift",
    "cmd_status",
    "describe_fiscal_params",
    "describe_job",
    "exit_code_for_closed_output",
    "job_as_json",
    "job_exit_code",
    "main",
    "submit_and_wait",
]

DEFAULT_WAIT_SECONDS = 120.0

# Modules that contribute subcommands: each exposes register_cli(subparsers).
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "kassa_appliance.testbeds.demo",
    "kassa_appliance.registers.simulator_cli",
    "kassa_appliance.testbeds.bitrix24.cli",
    "kassa_appliance.testbeds.webrequests.cli",
    "kassa_appliance.testbeds.maxapi.cli",
)


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
            if engine is not None and "delivery" in engine:
                status["delivery"] = engine.pop("delivery")  # reply delivery (docs/delivery.md)
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
    add_check_parser(sub)

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
