"""WebRequestsRegister against the Web Requests emulator (real HTTP on loopback) whose queue
runs on a SimulatorRegister; faults come from both control files."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kassa_appliance.registers.base import (
    CONNECTION_LOST,
    DENIED_IN_CLOSED_SHIFT,
    FN_FAULT,
    INVALID_TAX_TYPE,
    NO_CONNECTION,
    NO_PAPER,
    SHIFT_EXPIRED,
    ErrorCategory,
    RegisterError,
    RegisterUnavailable,
)
from kassa_appliance.registers.factory import simulator_state_dir
from kassa_appliance.registers.simulator import SimulatorRegister, read_state
from kassa_appliance.registers.simulator_faults import Fault, set_fault
from kassa_appliance.registers.webrequests import (
    REQUEST_CANCELED,
    WebRequestsRegister,
    attempt_uuid,
)
from kassa_appliance.testbeds.webrequests.server import WebRequestsEmulator
from sample_tasks import OPERATOR, sell


def sell_task(tax: str = "none") -> dict[str, Any]:
    return sell("250.00", tax=tax, name="Круассан")


class Stack:
    def __init__(self, emulator: WebRequestsEmulator):
        self.emulator = emulator
        self.state_dir = simulator_state_dir(emulator.data_dir)
        self.registers: list[WebRequestsRegister] = []

    def register(self, task_timeout: float = 5.0) -> WebRequestsRegister:
        register = WebRequestsRegister(
            self.emulator.url, task_timeout=task_timeout, poll_initial=0.01, poll_max=0.05
        )
        self.registers.append(register)
        return register

    def fd_number(self) -> int:
        state = read_state(self.state_dir)
        assert state is not None
        return state.fd_number

    def fault(self, name: str, value: int | bool | None) -> None:
        self.emulator.faults.set(name, value)

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.emulator.url, trust_env=False)


@pytest.fixture
def wr_stack(tmp_path: Path) -> Iterator[Stack]:
    """A running emulator with its simulated register in tmp_path."""
    emulator = WebRequestsEmulator(tmp_path / "wr", recovery_interval=0.02).start()
    try:
        yield Stack(emulator)
    finally:
        emulator.stop()


@pytest.fixture
def shift_stack(wr_stack: Stack) -> Stack:
    wr_stack.register().process({"type": "openShift", "operator": OPERATOR})
    return wr_stack


def expect_error(call: Callable[[], Any]) -> RegisterError:
    with pytest.raises(RegisterError) as caught:
        call()
    return caught.value


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.01)


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run ``call`` in a thread; the list receives its result or exception."""
    outcome: list[Any] = []

    def target() -> None:
        try:
            outcome.append(call())
        except Exception as exc:
            outcome.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    return thread, outcome


# -- happy path ----------------------------------------------------------------------------


def test_sell_through_web_requests(shift_stack: Stack) -> None:
    before = shift_stack.fd_number()
    result = shift_stack.register().process(sell_task(), request_id="job-1")
    assert result["fiscalParams"]["fiscalDocumentNumber"] == before + 1 == shift_stack.fd_number()


def test_the_same_job_id_is_answered_from_the_server_not_printed_twice(shift_stack: Stack) -> None:
    first = shift_stack.register().process(sell_task(), request_id="job-7")
    again = shift_stack.register().process(sell_task(), request_id="job-7")  # a fresh client
    assert again == first
    assert shift_stack.fd_number() == first["fiscalParams"]["fiscalDocumentNumber"]


def test_server_info_and_queue_status(wr_stack: Stack) -> None:
    register = wr_stack.register()
    register.open()
    assert register.server_info()["serverVersion"].endswith("kassa-emulator")
    register.process({"type": "getShiftStatus"})
    status = register.queue_status()
    assert status["isBlocked"] is False
    assert status["ready"] == 1
    assert status["number"] == 0


# -- categories ----------------------------------------------------------------------------


def test_no_paper_is_wait_and_a_retry_of_the_job_prints_it(shift_stack: Stack) -> None:
    set_fault(shift_stack.state_dir, "no_paper", Fault(count=1))
    register = shift_stack.register()
    before = shift_stack.fd_number()
    error = expect_error(lambda: register.process(sell_task(), request_id="job-2"))
    assert (error.code, error.category) == (NO_PAPER, ErrorCategory.WAIT)
    # The engine runs the same job again: a new attempt uuid, not the failed one's result.
    result = register.process(sell_task(), request_id="job-2")
    assert result["fiscalParams"]["fiscalDocumentNumber"] == before + 1 == shift_stack.fd_number()


def test_closed_and_expired_shift_are_shift(wr_stack: Stack) -> None:
    register = wr_stack.register()
    error = expect_error(lambda: register.process(sell_task()))
    assert (error.code, error.category) == (DENIED_IN_CLOSED_SHIFT, ErrorCategory.SHIFT)
    register.process({"type": "openShift", "operator": OPERATOR})
    SimulatorRegister(wr_stack.state_dir).advance_clock(25 * 3600)
    error = expect_error(lambda: register.process(sell_task()))
    assert (error.code, error.category) == (SHIFT_EXPIRED, ErrorCategory.SHIFT)


def test_fn_fault_and_bad_tax_are_definitive(shift_stack: Stack) -> None:
    register = shift_stack.register()
    set_fault(shift_stack.state_dir, "fn_fault", Fault(count=1))
    error = expect_error(lambda: register.process(sell_task()))
    assert (error.code, error.category) == (FN_FAULT, ErrorCategory.DEFINITIVE)
    error = expect_error(lambda: register.process(sell_task(tax="vat99")))
    assert (error.code, error.category) == (INVALID_TAX_TYPE, ErrorCategory.DEFINITIVE)


def test_connection_lost_after_fiscalisation_is_resolved_by_the_server(shift_stack: Stack) -> None:
    """The emulator blocks, compares FD numbers and reports the document: no ambiguity left."""
    set_fault(shift_stack.state_dir, "connection_lost_after", Fault(count=1))
    before = shift_stack.fd_number()
    result = shift_stack.register().process(sell_task(), request_id="job-3")
    assert result["fiscalParams"]["fiscalDocumentNumber"] == before + 1 == shift_stack.fd_number()
    assert shift_stack.register().queue_status()["isBlocked"] is False


def test_connection_lost_before_is_resolved_as_not_printed_and_the_retry_prints(
    shift_stack: Stack,
) -> None:
    set_fault(shift_stack.state_dir, "connection_lost_before", Fault(count=1))
    register = shift_stack.register()
    before = shift_stack.fd_number()
    error = expect_error(lambda: register.process(sell_task(), request_id="job-4"))
    assert (error.code, error.category) == (NO_CONNECTION, ErrorCategory.WAIT)
    assert shift_stack.fd_number() == before
    register.process(sell_task(), request_id="job-4")
    assert shift_stack.fd_number() == before + 1


def test_a_blocked_queue_past_the_deadline_is_ambiguous_then_recovers_exactly(
    shift_stack: Stack,
) -> None:
    shift_stack.fault("hold_recovery", True)
    set_fault(shift_stack.state_dir, "connection_lost_after", Fault(count=1))
    before = shift_stack.fd_number()
    register = shift_stack.register(task_timeout=0.4)
    error = expect_error(lambda: register.process(sell_task(), request_id="job-5"))
    assert (error.code, error.category) == (CONNECTION_LOST, ErrorCategory.AMBIGUOUS)
    status = register.queue_status()
    assert status["isBlocked"] is True
    assert status["blockedUUID"] == attempt_uuid("job-5", 0)

    shift_stack.fault("hold_recovery", None)
    result = shift_stack.register().process(sell_task(), request_id="job-5")
    assert result["fiscalParams"]["fiscalDocumentNumber"] == before + 1 == shift_stack.fd_number()


def test_connection_dropped_after_the_post_is_recovered_by_resubmitting(shift_stack: Stack) -> None:
    shift_stack.fault("drop_after_post", 1)
    before = shift_stack.fd_number()
    result = shift_stack.register().process(sell_task())
    assert result["fiscalParams"]["fiscalDocumentNumber"] == before + 1 == shift_stack.fd_number()


def test_connection_dropped_before_the_post_landed_is_resubmitted(shift_stack: Stack) -> None:
    shift_stack.fault("drop_before_post", 2)
    before = shift_stack.fd_number()
    shift_stack.register().process(sell_task(), request_id="job-6")
    assert shift_stack.fd_number() == before + 1


def test_server_gone_after_the_post_is_ambiguous_then_exact(shift_stack: Stack) -> None:
    shift_stack.fault("hold_queue", True)
    before = shift_stack.fd_number()
    register = shift_stack.register(task_timeout=0.6)
    request_uuid = attempt_uuid("job-8", 0)
    thread, outcome = in_thread(lambda: register.process(sell_task(), request_id="job-8"))
    wait_until(lambda: shift_stack.emulator.queue.results(request_uuid) is not None)
    shift_stack.fault("unreachable", True)
    shift_stack.fault("hold_queue", None)  # the device prints while the server is unreachable
    thread.join()
    (error,) = outcome
    assert isinstance(error, RegisterError)
    assert (error.code, error.category) == (CONNECTION_LOST, ErrorCategory.AMBIGUOUS)

    shift_stack.fault("unreachable", None)
    result = shift_stack.register().process(sell_task(), request_id="job-8")
    assert result["fiscalParams"]["fiscalDocumentNumber"] == before + 1 == shift_stack.fd_number()


def test_a_fiscal_task_never_started_is_cancelled_at_the_deadline(shift_stack: Stack) -> None:
    shift_stack.fault("hold_queue", True)
    before = shift_stack.fd_number()
    error = expect_error(
        lambda: shift_stack.register(task_timeout=0.3).process(sell_task(), request_id="job-9")
    )
    assert isinstance(error, RegisterUnavailable)
    assert error.category == ErrorCategory.WAIT
    results = shift_stack.emulator.queue.results(attempt_uuid("job-9", 0))
    assert results is not None and results[0]["status"] == "canceled"
    shift_stack.fault("hold_queue", None)
    shift_stack.register().process(sell_task(), request_id="job-9")
    assert shift_stack.fd_number() == before + 1


def test_a_request_cancelled_by_someone_else_is_definitive(shift_stack: Stack) -> None:
    shift_stack.fault("hold_queue", True)
    request_uuid = attempt_uuid("job-10", 0)
    thread, outcome = in_thread(
        lambda: shift_stack.register().process(sell_task(), request_id="job-10")
    )
    wait_until(lambda: shift_stack.emulator.queue.results(request_uuid) is not None)
    with shift_stack.http() as http:
        assert http.delete(f"/api/v2/requests/{request_uuid}").status_code == 200
    thread.join()
    (error,) = outcome
    assert isinstance(error, RegisterError)
    assert (error.code, error.category) == (REQUEST_CANCELED, ErrorCategory.DEFINITIVE)


def test_server_down_before_submitting_is_wait(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    register = WebRequestsRegister(f"http://127.0.0.1:{port}", task_timeout=1.0)
    with pytest.raises(RegisterUnavailable) as caught:
        register.process(sell_task(), request_id="job-11")
    assert caught.value.category == ErrorCategory.WAIT
    with pytest.raises(RegisterUnavailable):
        register.open()


def test_url_must_be_http() -> None:
    with pytest.raises(ValueError, match=r"register\.url"):
        WebRequestsRegister("127.0.0.1:16732")


# -- the emulator's HTTP surface -----------------------------------------------------------


def test_emulator_rejects_bad_submissions_and_unknown_uuids(wr_stack: Stack) -> None:
    with wr_stack.http() as http:
        two_fiscal = {"uuid": "u-1", "request": [sell_task(), sell_task()]}
        response = http.post("/api/v2/requests", json=two_fiscal)
        assert response.status_code == 400
        assert "Too many fiscal" in response.json()["error"]["description"]
        assert http.post("/api/v2/requests", json={"request": [sell_task()]}).status_code == 400
        assert http.post("/api/v2/requests", content=b"{not json").status_code == 400
        assert http.get("/api/v2/requests/unknown").status_code == 404
        single = {"uuid": "u-2", "request": {"type": "getShiftStatus"}}
        created = http.post("/api/v2/requests", json=single)
        assert created.status_code == 201
        assert created.json()["uuid"] == "u-2"
        assert http.post("/api/v2/requests", json=single).status_code == 409


def test_emulator_interrupts_subtasks_after_an_error(wr_stack: Stack) -> None:
    body = {"uuid": "u-3", "request": [sell_task(), {"type": "getShiftStatus"}]}
    with wr_stack.http() as http:
        assert http.post("/api/v2/requests", json=body).status_code == 201

        def final() -> bool:
            results = http.get("/api/v2/requests/u-3").json()["results"]
            return all(entry["status"] not in ("wait", "inProgress") for entry in results)

        wait_until(final)
        first, second = http.get("/api/v2/requests/u-3").json()["results"]
    assert (first["status"], first["error"]["code"]) == ("error", DENIED_IN_CLOSED_SHIFT)
    assert (second["status"], second["error"]["code"]) == ("interrupted", 502)


CLI_SCRIPT = """
import argparse, sys
from kassa_appliance.testbeds.webrequests.cli import register_cli
parser = argparse.ArgumentParser()
register_cli(parser.add_subparsers())
args = parser.parse_args(sys.argv[1:])
sys.exit(args.handler(args))
"""


def test_wr_emulator_command_serves_until_sigterm(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data_dir = tmp_path / "cli-data"
    command = [sys.executable, "-c", CLI_SCRIPT, "wr-emulator", "--port", str(port)]
    process = subprocess.Popen([*command, "--data-dir", str(data_dir)], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        assert f"127.0.0.1:{port}" in process.stdout.readline().decode()
        register = WebRequestsRegister(f"http://127.0.0.1:{port}", task_timeout=5.0)
        result = register.process({"type": "openShift", "operator": OPERATOR}, request_id="j")
        assert result["fiscalParams"]["shiftNumber"] == 1
        assert read_state(simulator_state_dir(data_dir)) is not None
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
