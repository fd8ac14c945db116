"""`kassa-appliance demo`: the appliance on its embedded default, showing receipts print.

It uses the simulated register (everything it prints is marked as not a fiscal
document) in a fresh state directory and the sample tasks shipped in
``kassa_appliance/samples``, and shows the paper tape, each job's outcome and its QR code.
One sample is deliberately malformed to show how a bad command is refused with its reason.

By default it runs the full path (:mod:`kassa_appliance.testbeds.demo_bitrix`): a loopback Bitrix24
portal emulator, the daemon as a subprocess, jobs stored in Bitrix24 and rung in over
Push&Pull, results read back from Bitrix24. ``--local`` runs the jobs through the journal
and the engine in this process instead, without Bitrix24.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from kassa_appliance.appliance.config import Config, RegisterConfig
from kassa_appliance.appliance.daemon import engine_lock, engine_settings, journal_path
from kassa_appliance.fiscal.engine import Engine
from kassa_appliance.fiscal.journal import Journal
from kassa_appliance.registers.factory import simulator_state_dir

DEMO_PRINT_DELAY = 1.5


def sample_tasks() -> list[tuple[str, Any]]:
    """The sample tasks shipped with the package, by file name order."""
    folder = resources.files("kassa_appliance") / "samples"
    entries = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".json")),
        key=lambda entry: entry.name,
    )
    return [(entry.name, json.loads(entry.read_text(encoding="utf-8"))) for entry in entries]


async def run_local_demo(data_dir: Path, print_delay: float, line_width: int) -> int:
    from kassa_appliance.cli import describe_job
    from kassa_appliance.registers.simulator import SimulatorRegister

    config = Config(register=RegisterConfig(driver="simulator"))
    register = SimulatorRegister(
        simulator_state_dir(data_dir),
        print_delay=print_delay,
        line_width=line_width,
        tape=lambda text: print(text, flush=True),
    )
    failures = 0
    with engine_lock(data_dir), Journal(journal_path(data_dir)) as journal:
        engine = Engine(journal, register, engine_settings(config))
        worker = asyncio.create_task(engine.run())
        try:
            samples = sample_tasks()
            samples.append(("05-x-report", {"type": "reportX"}))
            samples.append(("06-close-shift", {"type": "closeShift"}))
            for number, (name, task) in enumerate(samples, start=1):
                job_id = f"demo-{number:02d}-{Path(name).stem}"
                print(f"\n>>> job {job_id}: {task.get('type')} from {name}", flush=True)
                journal.submit(job_id, task, source="demo")
                engine.wake()
                job = await engine.wait_for(job_id)
                print(describe_job(job), flush=True)
                failures += job.error_code is not None
            again = await engine.wait_for("demo-01-01-sell-cash")
            journal.submit(again.id, {"type": "sell"}, source="demo")
            print(
                f"\n>>> the first job id submitted again: still {again.state.value}, "
                "nothing printed twice",
                flush=True,
            )
        finally:
            await engine.stop()
            await worker
    print(f"\nstate kept in {data_dir}; {failures} job(s) refused as expected", flush=True)
    return 0


def _run_in(data_dir: Path, args: argparse.Namespace, keep_state: bool) -> int:
    if args.local:
        return asyncio.run(run_local_demo(data_dir, args.print_delay, args.width))
    from kassa_appliance.testbeds.demo_bitrix import DemoSettings, run_full_demo

    settings = DemoSettings(
        root=data_dir,
        print_delay=args.print_delay,
        job_timeout=args.job_timeout,
        keep_state=keep_state,
    )
    return asyncio.run(run_full_demo(settings, sample_tasks()))


def cmd_demo(args: argparse.Namespace) -> int:
    if args.demo_dir is not None:
        return _run_in(args.demo_dir, args, keep_state=True)
    with tempfile.TemporaryDirectory(prefix="kassa-demo-") as folder:
        return _run_in(Path(folder), args, keep_state=False)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected seconds >= 0")
    return value


def register_cli(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo",
        help="run the appliance on the simulated register with sample receipts sent through "
        "a loopback Bitrix24 portal emulator",
    )
    demo.add_argument(
        "--local",
        action="store_true",
        help="run the jobs through the journal and engine in this process, without Bitrix24",
    )
    demo.add_argument(
        "--job-timeout",
        type=_seconds,
        default=60.0,
        help="seconds to wait for each job's outcome in Bitrix24 (default %(default)s)",
    )
    demo.add_argument(
        "--print-delay",
        type=_seconds,
        default=DEMO_PRINT_DELAY,
        help="seconds the simulated printer spends on each document (default %(default)s)",
    )
    demo.add_argument(
        "--width", type=int, choices=[32, 48], default=32, help="tape width (--local only)"
    )
    demo.add_argument(
        "--demo-dir",
        type=Path,
        default=None,
        help="keep the demo's state here (default: a fresh temporary directory)",
    )
    demo.set_defaults(handler=cmd_demo)
