"""``kassa-appliance max-emulator``: run the MAX Bot API emulator on loopback."""

from __future__ import annotations

import argparse
import os
import signal
import threading
from typing import Any

TOKEN_ENV = "KASSA_MAX_EMULATOR_TOKEN"


def register_cli(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "max-emulator",
        help="serve an emulated MAX Bot API (long polling, messages, uploads) on loopback",
        description=(
            "Serve the MAX Bot API (/me, /updates, /messages, /answers, /uploads, /chats) on a "
            "loopback port, with test controls under /_emulator/ (a user writing, pressing a "
            f"button, faults). The bot token it accepts is read from ${TOKEN_ENV}."
        ),
    )
    parser.add_argument("--port", type=int, default=16733, help="TCP port (default 16733)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    parser.set_defaults(handler=run_max_emulator)


def run_max_emulator(args: argparse.Namespace) -> int:
    token = os.environ.get(TOKEN_ENV, "")
    if len(token) < 16:
        print(f"max-emulator: set {TOKEN_ENV} to the bot token (at least 16 characters)")
        return 2
    from .server import MaxApiEmulator  # lazily: the daemon's CLI never loads the emulator

    emulator = MaxApiEmulator(token, host=args.host, port=args.port)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    emulator.start()
    print(f"max-emulator listening on {emulator.url}", flush=True)
    try:
        stop.wait()
    finally:
        emulator.stop()
    return 0
