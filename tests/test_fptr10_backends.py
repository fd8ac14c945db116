"""tests/backends.py stacks serve a *separate* process configured only through config.json
values (what the daemon subprocess of the crash suite gets)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from backends import BackendStack, start_fptr10_stack, start_webrequests_stack
from kassa_appliance.registers.simulator import read_state
from kassa_appliance.registers.simulator_faults import Fault, set_fault
from kassa_appliance.registers.webrequests import attempt_uuid

CLIENT = """
import json, sys
from pathlib import Path
from kassa_appliance.appliance.config import Config, RegisterConfig
from kassa_appliance.registers.factory import make_register

config = Config(register=RegisterConfig(**json.loads(sys.argv[1])))
register = make_register(config.register, Path(sys.argv[2]))
register.open()
operator = {"name": "Кассир", "vatin": "500100732259"}
register.process({"type": "openShift", "operator": operator}, request_id="shift-1")
sell = {
    "type": "sell", "operator": operator,
    "items": [{"type": "position", "name": "Чай", "price": 90.0, "quantity": 1, "amount": 90.0,
               "paymentMethod": "fullPayment", "paymentObject": "commodity",
               "tax": {"type": "none"}}],
    "payments": [{"type": "cash", "sum": 90.0}], "total": 90.0,
}
print("sending", flush=True)
result = register.process(sell, request_id="sell-1")
print(json.dumps(result["fiscalParams"]), flush=True)
register.close()
"""

STARTERS: dict[str, Callable[[Path], BackendStack]] = {
    "fptr10": start_fptr10_stack,
    "webrequests": start_webrequests_stack,
}


def run_client(stack: BackendStack, tmp_path: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", CLIENT, json.dumps(stack.register_config), str(tmp_path / "d")],
        stdout=subprocess.PIPE,
        text=True,
    )


def wait_until_sell_reached_the_device(stack: BackendStack) -> None:
    def delivered() -> bool:
        if stack.bridge is not None:
            return stack.bridge.calls.count("process") >= 2  # openShift, then the sell
        assert stack.emulator is not None
        results = stack.emulator.queue.results(attempt_uuid("sell-1", 0))
        return results is not None and results[0]["status"] != "wait"

    deadline = time.monotonic() + 10
    while not delivered():
        assert time.monotonic() < deadline, "the sell never reached the device"
        time.sleep(0.005)


@pytest.mark.parametrize("backend", sorted(STARTERS))
def test_a_separate_process_fiscalises_through_the_stack(backend: str, tmp_path: Path) -> None:
    stack = STARTERS[backend](tmp_path)
    try:
        client = run_client(stack, tmp_path)
        out, _ = client.communicate(timeout=30)
        assert client.returncode == 0
        params = json.loads(out.splitlines()[-1])
        state = read_state(stack.simulator_state_dir)
        assert state is not None
        assert params["fiscalDocumentNumber"] == state.fd_number == 3  # registration, shift, sell
    finally:
        stack.cleanup()


@pytest.mark.parametrize("backend", sorted(STARTERS))
def test_the_device_finishes_a_receipt_when_the_host_is_killed(
    backend: str, tmp_path: Path
) -> None:
    stack = STARTERS[backend](tmp_path)
    register_config, cleanup = stack
    assert register_config["driver"] == backend
    try:
        set_fault(stack.simulator_state_dir, "print_delay", Fault(seconds=0.3))
        client = run_client(stack, tmp_path)
        assert client.stdout is not None
        assert client.stdout.readline().strip() == "sending"
        wait_until_sell_reached_the_device(stack)
        client.send_signal(signal.SIGKILL)
        client.wait()
        deadline = time.monotonic() + 10
        while (state := read_state(stack.simulator_state_dir)) is None or state.fd_number < 3:
            assert time.monotonic() < deadline, "the receipt in flight was never finished"
            time.sleep(0.02)
        assert state.fd_number == 3
    finally:
        cleanup()
