"""Fptr10Register through the real ctypes path: the ABI test library (tests/abi) compiled with
gcc, forwarding every driver call to a SimulatorRegister over a unix socket."""

from __future__ import annotations

import ctypes
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backends import build_fake_libfptr10, short_socket_dir
from fptr10_bridge import Fptr10Bridge
from kassa_appliance.registers.base import (
    CLOSE_RECEIPT_INTERRUPTED,
    CONNECTION_LOST,
    COVER_OPENED,
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
from kassa_appliance.registers.fptr10 import DriverLibraryError, Fptr10Register, driver_settings
from kassa_appliance.registers.fptr10_binding import (
    DRIVER_LIBRARY_UNUSABLE,
    Fptr10Library,
    resolve_library_path,
)
from kassa_appliance.registers.simulator import SimulatorRegister, read_state
from kassa_appliance.registers.simulator_faults import Fault, set_fault
from sample_tasks import OPERATOR, sell


def sell_task(tax: str = "none") -> dict[str, Any]:
    return sell("505.50", tax=tax, name="Кофе капучино 300 мл")


@dataclass
class Fptr10Stack:
    register: Fptr10Register
    bridge: Fptr10Bridge
    state_dir: Path
    socket_path: Path
    register_lib: Path

    def fd_number(self) -> int:
        state = read_state(self.state_dir)
        assert state is not None
        return state.fd_number

    def make_register(self, **kwargs: Any) -> Fptr10Register:
        return Fptr10Register(
            str(self.register_lib),
            extra_settings={"FakeSocketPath": str(self.socket_path)},
            **kwargs,
        )


@pytest.fixture(scope="session")
def fake_libfptr10(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ABI test library, compiled once per session."""
    return build_fake_libfptr10(tmp_path_factory.mktemp("abi"))


@pytest.fixture
def fptr10_stack(fake_libfptr10: Path, tmp_path: Path) -> Iterator[Fptr10Stack]:
    """An opened Fptr10Register wired to a simulator (state in tmp_path) via the fake lib."""
    socket_dir = short_socket_dir()
    socket_path = socket_dir / "fptr.sock"
    state_dir = tmp_path / "simulator"
    bridge = Fptr10Bridge(socket_path, SimulatorRegister(state_dir)).start()
    register = Fptr10Register(
        str(fake_libfptr10),
        extra_settings={"FakeSocketPath": str(socket_path)},
        call_timeout=10.0,
    )
    register.open()
    stack = Fptr10Stack(register, bridge, state_dir, socket_path, fake_libfptr10)
    try:
        yield stack
    finally:
        register.close()
        bridge.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)


@pytest.fixture
def open_shift_stack(fptr10_stack: Fptr10Stack) -> Fptr10Stack:
    fptr10_stack.register.process({"type": "openShift", "operator": OPERATOR})
    return fptr10_stack


def expect_error(register: Fptr10Register, task: dict[str, Any]) -> RegisterError:
    with pytest.raises(RegisterError) as caught:
        register.process(task)
    return caught.value


# -- happy path and marshalling -----------------------------------------------------------


def test_sell_is_fiscalised_through_the_driver(open_shift_stack: Fptr10Stack) -> None:
    before = open_shift_stack.fd_number()
    open_shift_stack.bridge.calls.clear()

    result = open_shift_stack.register.process(sell_task())

    params = result["fiscalParams"]
    assert params["fiscalDocumentNumber"] == before + 1 == open_shift_stack.fd_number()
    assert params["total"] == 505.5
    assert open_shift_stack.bridge.calls == ["validate", "process"]


def test_queries_are_not_validated_and_cyrillic_survives_wchar(fptr10_stack: Fptr10Stack) -> None:
    fptr10_stack.bridge.calls.clear()
    info = fptr10_stack.register.process({"type": "getDeviceInfo"})["deviceInfo"]
    direct = SimulatorRegister(fptr10_stack.state_dir)
    with direct:
        expected = direct.process({"type": "getDeviceInfo"})["deviceInfo"]
    assert info == expected
    assert any(ord(char) > 127 for char in info["modelName"])
    assert fptr10_stack.bridge.calls == ["process"]


def test_long_results_and_descriptions_are_read_with_a_second_bigger_buffer(
    fptr10_stack: Fptr10Stack,
) -> None:
    """A 16-wchar buffer forces libfptr_get_param_str / error_description to ask for more."""
    register = fptr10_stack.make_register(buffer_size=16, call_timeout=10.0)
    try:
        status = register.process({"type": "getFnInfo"})
        assert len(str(status)) > 16
        assert "fnInfo" in status
        error = expect_error(register, sell_task(tax="vat99"))
        assert error.code == DENIED_IN_CLOSED_SHIFT or error.code == INVALID_TAX_TYPE
        assert len(error.description) > 16
        assert error.description.isprintable()
    finally:
        register.close()


def test_handle_buffer_protocol_directly(fake_libfptr10: Path) -> None:
    """get_param_str returns the size needed; a too-small buffer is never overrun."""
    library = Fptr10Library(str(fake_libfptr10))
    handle = library.create(buffer_size=4)
    try:
        handle.set_settings({"FakeSocketPath": "/nonexistent/socket"})
        assert handle.open() == -1
        assert handle.error_code() == NO_CONNECTION
        assert handle.error_description() == "Нет связи"
        raw = ctypes.create_unicode_buffer(4)
        needed = library.function("libfptr_error_description")(
            ctypes.c_void_p(handle._handle.value), raw, 4
        )
        assert needed == len("Нет связи") + 1
        assert raw.value == "Нет"
        assert library.version() == "10.10.7.0-kassa-fake"
    finally:
        handle.destroy()
    assert handle.destroyed


# -- error categories ----------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "code"), [("no_paper", NO_PAPER), ("cover_open", COVER_OPENED)])
def test_paper_and_cover_faults_are_wait(
    open_shift_stack: Fptr10Stack, fault: str, code: int
) -> None:
    set_fault(open_shift_stack.state_dir, fault, Fault(count=1))
    before = open_shift_stack.fd_number()
    error = expect_error(open_shift_stack.register, sell_task())
    assert (error.code, error.category) == (code, ErrorCategory.WAIT)
    assert open_shift_stack.fd_number() == before
    assert "fiscalParams" in open_shift_stack.register.process(sell_task())


def test_closed_shift_is_shift(fptr10_stack: Fptr10Stack) -> None:
    error = expect_error(fptr10_stack.register, sell_task())
    assert (error.code, error.category) == (DENIED_IN_CLOSED_SHIFT, ErrorCategory.SHIFT)


def test_expired_shift_is_shift(open_shift_stack: Fptr10Stack) -> None:
    SimulatorRegister(open_shift_stack.state_dir).advance_clock(25 * 3600)
    error = expect_error(open_shift_stack.register, sell_task())
    assert (error.code, error.category) == (SHIFT_EXPIRED, ErrorCategory.SHIFT)


def test_connection_lost_after_fiscalisation_is_ambiguous(open_shift_stack: Fptr10Stack) -> None:
    set_fault(open_shift_stack.state_dir, "connection_lost_after", Fault(count=1))
    before = open_shift_stack.fd_number()
    error = expect_error(open_shift_stack.register, sell_task())
    assert (error.code, error.category) == (CONNECTION_LOST, ErrorCategory.AMBIGUOUS)
    assert open_shift_stack.fd_number() == before + 1  # the document does exist


def test_an_interrupted_receipt_close_is_ambiguous(open_shift_stack: Fptr10Stack) -> None:
    set_fault(open_shift_stack.state_dir, "receipt_interrupted", Fault(count=1))
    before = open_shift_stack.fd_number()
    error = expect_error(open_shift_stack.register, sell_task())
    assert (error.code, error.category) == (CLOSE_RECEIPT_INTERRUPTED, ErrorCategory.AMBIGUOUS)
    assert open_shift_stack.fd_number() == before + 1  # the document does exist


def test_cable_pulled_after_delivery_turns_no_connection_into_connection_lost(
    open_shift_stack: Fptr10Stack,
) -> None:
    """The driver says NO_CONNECTION (2) for a fiscal task it had sent: outcome unknown."""
    open_shift_stack.bridge.unplug_after_process = 1
    before = open_shift_stack.fd_number()
    error = expect_error(open_shift_stack.register, sell_task())
    assert (error.code, error.category) == (CONNECTION_LOST, ErrorCategory.AMBIGUOUS)
    assert "driver code 2" in error.description
    assert open_shift_stack.fd_number() == before + 1
    # The driver reconnects on the next call (AutoReconnect), as the engine's FD check needs.
    status = open_shift_stack.register.process({"type": "getFnStatus"})
    assert status["fnStatus"]["fiscalDocumentNumber"] == before + 1


def test_no_connection_on_a_fiscal_task_is_ambiguous_even_if_nothing_was_printed(
    open_shift_stack: Fptr10Stack,
) -> None:
    """The driver cannot tell "before" from "after": FD comparison decides, not a blind retry."""
    set_fault(open_shift_stack.state_dir, "connection_lost_before", Fault(count=1))
    before = open_shift_stack.fd_number()
    error = expect_error(open_shift_stack.register, sell_task())
    assert error.category == ErrorCategory.AMBIGUOUS
    assert open_shift_stack.fd_number() == before


def test_no_connection_on_a_query_is_wait(fptr10_stack: Fptr10Stack) -> None:
    fptr10_stack.bridge.unplug_after_process = 1
    error = expect_error(fptr10_stack.register, {"type": "getShiftStatus"})
    assert (error.code, error.category) == (NO_CONNECTION, ErrorCategory.WAIT)


def test_register_not_reachable_at_open_is_unavailable(
    fake_libfptr10: Path, tmp_path: Path
) -> None:
    register = Fptr10Register(
        str(fake_libfptr10), extra_settings={"FakeSocketPath": str(tmp_path / "absent.sock")}
    )
    try:
        with pytest.raises(RegisterUnavailable) as caught:
            register.process(sell_task())
        assert (caught.value.code, caught.value.category) == (NO_CONNECTION, ErrorCategory.WAIT)
    finally:
        register.close()


@pytest.mark.parametrize(
    ("fault", "task", "code"),
    [("fn_fault", sell_task(), FN_FAULT), (None, sell_task(tax="vat99"), INVALID_TAX_TYPE)],
)
def test_fn_fault_and_bad_tax_type_are_definitive(
    open_shift_stack: Fptr10Stack, fault: str | None, task: dict[str, Any], code: int
) -> None:
    if fault is not None:
        set_fault(open_shift_stack.state_dir, fault, Fault(count=1))
    error = expect_error(open_shift_stack.register, task)
    assert (error.code, error.category) == (code, ErrorCategory.DEFINITIVE)


def test_a_task_without_type_is_rejected_before_the_driver(fptr10_stack: Fptr10Stack) -> None:
    fptr10_stack.bridge.calls.clear()
    error = expect_error(fptr10_stack.register, {"items": []})
    assert error.category == ErrorCategory.DEFINITIVE
    assert "'type'" in error.description
    assert fptr10_stack.bridge.calls == []


def test_a_hanging_fiscal_call_is_ambiguous_and_later_calls_fail_fast(
    open_shift_stack: Fptr10Stack,
) -> None:
    set_fault(open_shift_stack.state_dir, "print_delay", Fault(count=1, seconds=1.0))
    register = open_shift_stack.make_register(call_timeout=0.2)
    try:
        error = expect_error(register, sell_task())
        assert (error.code, error.category) == (CONNECTION_LOST, ErrorCategory.AMBIGUOUS)
        with pytest.raises(RegisterUnavailable, match="still busy"):
            register.process({"type": "getShiftStatus"})
    finally:
        register.close()


# -- the library itself --------------------------------------------------------------------


def test_missing_library_is_a_clear_blocking_error(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "libfptr10.so"
    register = Fptr10Register(str(path))
    with pytest.raises(DriverLibraryError) as caught:
        register.open()
    error = caught.value
    assert error.code == DRIVER_LIBRARY_UNUSABLE
    assert error.health == "blocked"
    assert str(path) in error.description
    assert "does not exist" in error.description
    assert isinstance(error, RegisterUnavailable)
    register.close()


def test_a_directory_means_libfptr10_so_inside_it(fake_libfptr10: Path) -> None:
    assert Fptr10Library(str(fake_libfptr10.parent)).path == str(fake_libfptr10)


def test_wrong_library_names_the_missing_symbols() -> None:
    with pytest.raises(DriverLibraryError) as caught:
        Fptr10Library("libc.so.6")
    assert "libfptr_create" in caught.value.description
    assert "libc.so.6" in caught.value.description


def test_a_file_that_is_not_a_library_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "libfptr10.so"
    bogus.write_text("not an ELF file")
    with pytest.raises(DriverLibraryError, match="cannot be loaded"):
        Fptr10Library(str(bogus))


# -- settings ------------------------------------------------------------------------------


def test_driver_settings_from_device_paths() -> None:
    assert driver_settings("auto") == {
        "Model": 500,
        "OfdChannel": 2,
        "Port": 1,
        "UsbDevicePath": "auto",
    }
    assert driver_settings("/dev/ttyACM0")["Port"] == 0
    assert driver_settings("/dev/ttyACM0")["ComFile"] == "/dev/ttyACM0"
    devpath = "/devices/platform/scb/fd500000.pcie/pci0000:00/usb1/1-1/1-1.3"
    assert driver_settings(devpath)["UsbDevicePath"] == "1-1.3"
    assert driver_settings("1-1.3")["UsbDevicePath"] == "1-1.3"
    with pytest.raises(ValueError, match="usb_path"):
        driver_settings("/dev/bus/usb/001/004")


def test_default_library_path_inside_the_snap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SNAP", "/snap/kassa-appliance/x1")
    assert resolve_library_path(None) == "/snap/kassa-appliance/x1/usr/lib/atol/libfptr10.so"
    monkeypatch.delenv("SNAP")
    assert resolve_library_path(None) == "libfptr10.so"
