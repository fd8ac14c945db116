"""`kassa-appliance check`: validate and normalise a task without touching the register.

A dry run for integrators: the task passes exactly the validation a job passes
(:func:`kassa_appliance.fiscal.receipt.parse_task`), then the normalised task the register
would get (:func:`kassa_appliance.fiscal.receipt.to_driver_json`) is printed as JSON and the
exit code is 0. A refused task prints every problem (field path, what is wrong, what is
expected, the FFD tag where known), one per line, and exits with 2, as does input that is not
JSON. No configuration, journal or register is used.
"""

from __future__ import annotations

import argparse
import json

from kassa_appliance.appliance.cli_jobs import EXIT_OK, EXIT_USAGE, _read_task
from kassa_appliance.fiscal.receipt import TaskValidationError, parse_task, to_driver_json

__all__ = ["cmd_check", "render_problems"]


def render_problems(error: TaskValidationError) -> str:
    """Every problem (not only the first twenty the error's own text lists)."""
    count = len(error.problems)
    head = f"invalid task ({count:,} problem{'s' if count != 1 else ''}):"
    return "\n".join([head, *(f"  - {problem}" for problem in error.problems)])


def cmd_check(args: argparse.Namespace) -> int:
    data = _read_task(args.file)
    try:
        task = parse_task(data)
    except TaskValidationError as error:
        print(render_problems(error))
        return EXIT_USAGE
    print(json.dumps(to_driver_json(task), ensure_ascii=False, indent=2))
    return EXIT_OK


def add_check_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    check = sub.add_parser(
        "check",
        help="validate and normalise an Atol JSON task (file or - for stdin) without printing it",
    )
    check.add_argument("file", help="path to the task JSON, or - to read standard input")
    check.set_defaults(handler=cmd_check)
