"""The daemon stays small on an appliance that uses no channel: `kassa-appliance run` loads
neither an HTTP server library, the NATS client, the bots nor any emulator unless a section
asks for them (idle RSS target, bench/startup.py). Checked in a fresh interpreter, the way
the daemon starts: the CLI (with every subcommand registered) and the daemon's modules."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "aiohttp",
    "nats",
    "kassa_appliance.testbeds.bitrix24.app",
    "kassa_appliance.testbeds.maxapi.server",
    "kassa_appliance.testbeds.webrequests.server",
    "kassa_appliance.channels.lan.server",
    "kassa_appliance.channels.relay.consumer",
    "kassa_appliance.channels.maxbot.bot",
    "kassa_appliance.channels.b24bot.host",
    "kassa_appliance.channels.automation.drain",
)
"""What only an enabled channel (or an emulator command) may load; the settings sections and
the emulators' argparse registration are light and load always."""
PROBE = """
import json, sys
import kassa_appliance.cli as cli
import kassa_appliance.appliance.daemon
import kassa_appliance.appliance.run_delivery
cli.build_parser() if hasattr(cli, "build_parser") else None
print(json.dumps(sorted(sys.modules)))
"""


def loaded_modules() -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    modules: list[str] = json.loads(out)
    return modules


def test_the_daemon_and_its_cli_load_no_channel_library_until_a_channel_is_enabled() -> None:
    modules = loaded_modules()
    heavy = [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]
    assert heavy == [], f"loaded at start although no channel is enabled: {heavy[:10]}"
    assert "kassa_appliance.appliance.daemon" in modules  # the probe did load the daemon
