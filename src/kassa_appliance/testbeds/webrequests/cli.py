"""``kassa-appliance wr-emulator``: run the Web Requests emulator on loopback."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from kassa_appliance.registers.factory import simulator_state_dir


def register_cli(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "wr-emulator",
        help="serve an emulated Atol Web Requests API backed by the simulated register",
        description=(
            "Serve Atol's Web Requests API v2 (/api/v2/requests, ...) on a loopback port, "
            "executing tasks on the simulated register in DATA_DIR/simulator. Faults: "
            "DATA_DIR/wr-emulator-faults.json and DATA_DIR/simulator/simulator-faults.json."
        ),
    )
    parser.add_argument("--port", type=int, default=16732, help="TCP port (default 16732)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.add_argument("--data-dir", type=Path, required=True, help="state directory")
    parser.set_defaults(handler=run_wr_emulator)


def run_wr_emulator(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    from .server import WebRequestsEmulator  # lazily: the daemon's CLI never loads the emulator

    emulator = WebRequestsEmulator(data_dir, host=args.host, port=args.port)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    emulator.start()
    logging.getLogger(__name__).info(
        "Web Requests emulator on %s (register state %s)",
        emulator.url,
        simulator_state_dir(data_dir),
    )
    print(f"wr-emulator listening on {emulator.url}", flush=True)
    try:
        stop.wait()
    finally:
        emulator.stop()
    return 0
