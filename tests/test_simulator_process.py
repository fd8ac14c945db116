"""The simulator across processes: shared state under flock, SIGKILL survival, the CLI group."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from kassa_appliance.registers.factory import simulator_state_dir
from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.registers.simulator_cli import register_cli
from kassa_appliance.registers.simulator_faults import Fault, read_control

SELL: dict[str, Any] = {
    "type": "sell",
    "items": [
        {
            "type": "position",
            "name": "Тест",
            "price": 10.0,
            "quantity": 1,
            "amount": 10.0,
            "tax": {"type": "none"},
        }
    ],
    "payments": [{"type": "cash", "sum": 10.0}],
}

# Runs sells on the simulator in argv[1]; argv[2] sells (0 = forever); prints each FD number.
SELLER = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from kassa_appliance.registers.simulator import SimulatorRegister

    register = SimulatorRegister(Path(sys.argv[1]))
    register.open()
    task = json.loads(sys.argv[3])
    print("ready", flush=True)
    done = 0
    while int(sys.argv[2]) == 0 or done < int(sys.argv[2]):
        result = register.process(task)
        print(result["fiscalParams"]["fiscalDocumentNumber"], flush=True)
        done += 1
    """
)


def start_seller(state_dir: Path, count: int) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [sys.executable, "-c", SELLER, str(state_dir), str(count), json.dumps(SELL)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    return process


@pytest.fixture
def shared_register(tmp_path: Path) -> Any:
    register = SimulatorRegister(tmp_path / "simulator")
    register.open()
    register.process({"type": "openShift"})
    yield register
    register.close()


def test_two_processes_on_one_device_never_share_or_skip_fd_numbers(
    shared_register: SimulatorRegister,
) -> None:
    count = 150
    seller = start_seller(shared_register.state_dir, count)
    mine = [
        shared_register.process(SELL)["fiscalParams"]["fiscalDocumentNumber"] for _ in range(count)
    ]
    output, _ = seller.communicate(timeout=60)
    assert seller.returncode == 0
    theirs = [int(line) for line in output.split()]
    assert len(theirs) == count
    assert sorted(mine + theirs) == list(range(3, 3 + 2 * count))
    state = shared_register.state()
    assert state.document_counts["sell"] == 2 * count
    assert state.receipt_number == 2 * count
    assert str(state.cash_sum) == f"{10 * 2 * count}.00"


def test_state_survives_sigkill_mid_stream(shared_register: SimulatorRegister) -> None:
    seller = start_seller(shared_register.state_dir, 0)
    assert seller.stdout is not None
    answered = [int(seller.stdout.readline()) for _ in range(40)]
    os.kill(seller.pid, signal.SIGKILL)
    seller.wait(timeout=10)
    last_answered = answered[-1]
    fd_after = shared_register.process({"type": "getFnStatus"})["fnStatus"]["fiscalDocumentNumber"]
    # Every answered document is stored; at most the one in flight at the kill is extra.
    assert last_answered <= fd_after <= last_answered + 2
    last = shared_register.process({"type": "getLastFiscalParams", "forReceipt": True})
    assert last["fiscalParams"]["fiscalDocumentNumber"] == fd_after
    next_fd = shared_register.process(SELL)["fiscalParams"]["fiscalDocumentNumber"]
    assert next_fd == fd_after + 1


@pytest.fixture
def cli(tmp_path: Path) -> Any:
    parser = argparse.ArgumentParser(prog="kassa-appliance")
    register_cli(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str) -> int:
        args = parser.parse_args(list(argv))
        args.data_dir = tmp_path
        code: int = args.handler(args)
        return code

    return run


def test_cli_sets_shows_and_clears_faults(
    cli: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state_dir = simulator_state_dir(tmp_path)
    assert cli("simulator", "fault", "no_paper", "--count", "2") == 0
    assert cli("simulator", "fault", "connection_lost_after", "--rate", "0.25") == 0
    assert cli("simulator", "fault", "print_delay", "--seconds", "0.5") == 0
    faults = read_control(state_dir).faults
    assert faults == {
        "no_paper": Fault(count=2),
        "connection_lost_after": Fault(rate=0.25),
        "print_delay": Fault(seconds=0.5),
    }
    assert cli("simulator", "fault", "print_delay") == 2
    assert "print_delay needs seconds" in capsys.readouterr().err
    assert cli("simulator", "fault", "no_paper", "--off") == 0
    assert "no_paper" not in read_control(state_dir).faults
    capsys.readouterr()
    assert cli("simulator", "faults") == 0
    shown = json.loads(capsys.readouterr().out)
    assert set(shown["faults"]) == {"connection_lost_after", "print_delay"}
    assert cli("simulator", "clear") == 0
    assert read_control(state_dir).faults == {}


def test_cli_clock_and_state(cli: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("simulator", "state") == 1  # no device yet
    register = SimulatorRegister(simulator_state_dir(tmp_path))
    register.open()
    try:
        register.process({"type": "openShift"})
        register.process(SELL)
        assert cli("simulator", "clock", "--advance", "25") == 0
        assert register.process({"type": "getShiftStatus"})["shiftStatus"]["state"] == "expired"
    finally:
        register.close()
    capsys.readouterr()
    assert cli("simulator", "state") == 0
    state = json.loads(capsys.readouterr().out)
    assert state["fiscalDocumentNumber"] == 3
    assert state["documentCounts"] == {"openShift": 1, "sell": 1}
    assert state["cashSum"] == "10.00"
    assert read_control(simulator_state_dir(tmp_path)).clock_offset_seconds == 25 * 3600
