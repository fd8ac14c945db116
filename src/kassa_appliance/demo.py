"""`kassa-appliance demo`: the appliance on its embedded default, showing receipts print.

It uses the simulated register (everything it prints is marked as not a fiscal
document) in a fresh state directory, sends the sample tasks shipped in
``kassa_appliance/samples`` through the journal and the engine exactly as production
jobs go, and shows the paper tape, each job's outcome and its QR code. One sample is
deliberately malformed to show how a bad command is refused with its reason.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from kassa_appliance.config import Config, RegisterConfig
from kassa_appliance.daemon import engine_lock, engine_settings, journal_path
from kassa_appliance.engine import Engine
from kassa_appliance.journal import Journal
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


async def run_demo(data_dir: Path, print_delay: float, line_width: int) -> int:
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


def cmd_demo(args: argparse.Namespace) -> int:
    if args.demo_dir is not None:
        return asyncio.run(run_demo(args.demo_dir, args.print_delay, args.width))
    with tempfile.TemporaryDirectory(prefix="kassa-demo-") as folder:
        return asyncio.run(run_demo(Path(folder), args.print_delay, args.width))


def register_cli(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo", help="run the appliance on the simulated register with sample receipts"
    )
    demo.add_argument(
        "--print-delay",
        type=float,
        default=DEMO_PRINT_DELAY,
        help="seconds the simulated printer spends on each document (default %(default)s)",
    )
    demo.add_argument("--width", type=int, choices=[32, 48], default=32, help="tape width")
    demo.add_argument(
        "--demo-dir",
        type=Path,
        default=None,
        help="keep the demo's state here (default: a fresh temporary directory)",
    )
    demo.set_defaults(handler=cmd_demo)
