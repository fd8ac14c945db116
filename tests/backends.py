"""Real-backend stacks for tests that run the daemon (or a register) against fptr10 or
webrequests, each backed by a SimulatorRegister whose state directory the test can read.

Usage (e.g. a crash suite parametrised over backends)::

    from backends import start_fptr10_stack, start_webrequests_stack

    stack = start_fptr10_stack(tmp_path)            # or start_webrequests_stack(tmp_path)
    try:
        config = Config(register=RegisterConfig(**stack.register_config))
        save_config(data_dir, config)
        env = {**os.environ, **stack.env}          # stack.env is optional, see below
        ...run / SIGKILL the daemon subprocess...
        load_state(stack.simulator_state_dir)       # count FD documents
        set_fault(stack.simulator_state_dir, "connection_lost_after", Fault(rate=0.3))
    finally:
        stack.cleanup()

``register_config, cleanup = start_fptr10_stack(tmp_path)`` also works (iteration yields
those two). The stacks live in the test process, playing the device: SIGKILLing the daemon
does not stop the register, exactly like a real Atol.

* fptr10: ``tests/abi/fake_libfptr10.c`` is compiled with the bridge's socket path baked in
  (``register.lib_path`` is enough; ``stack.env`` repeats it as ``KASSA_FAKE_FPTR_SOCKET``).
  ``stack.bridge.unplug_after_process = N`` hangs up after the next N delivered tasks.
* webrequests: a WebRequestsEmulator on a free loopback port (``register.url``); its
  faults: ``stack.emulator.faults.set("drop_after_post", 1)`` etc.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fptr10_bridge import Fptr10Bridge
from kassa_appliance.registers.factory import simulator_state_dir
from kassa_appliance.registers.simulator import SimulatorRegister
from kassa_appliance.testbeds.webrequests.server import WebRequestsEmulator

FAKE_LIBRARY_SOURCE = Path(__file__).parent / "abi" / "fake_libfptr10.c"
FAKE_SOCKET_ENV = "KASSA_FAKE_FPTR_SOCKET"


def build_fake_libfptr10(out_dir: Path, *, default_socket: str | None = None) -> Path:
    """Compile the ABI test library into ``out_dir/libfptr10.so`` and return its path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "libfptr10.so"
    command = ["gcc", "-shared", "-fPIC", "-O1", "-Wall", "-Werror", "-o", str(target)]
    if default_socket is not None:
        command.append(f'-DFAKE_DEFAULT_SOCKET="{default_socket}"')
    command.append(str(FAKE_LIBRARY_SOURCE))
    subprocess.run(command, check=True, capture_output=True, text=True)
    return target


def short_socket_dir() -> Path:
    """A short directory for AF_UNIX paths (limited to 107 bytes; tmp_path may be longer)."""
    return Path(tempfile.mkdtemp(prefix="kfptr-"))


@dataclass
class BackendStack:
    register_config: dict[str, Any]
    """Goes under ``register`` in config.json: ``RegisterConfig(**register_config)``."""
    simulator_state_dir: Path
    cleanup: Callable[[], None]
    env: dict[str, str] = field(default_factory=dict)
    bridge: Fptr10Bridge | None = None
    emulator: WebRequestsEmulator | None = None

    def __iter__(self) -> Iterator[Any]:
        return iter((self.register_config, self.cleanup))


def start_fptr10_stack(tmp_dir: Path, *, print_delay: float = 0.0) -> BackendStack:
    """Fake libfptr10.so + bridge + SimulatorRegister in ``tmp_dir/fptr10-simulator``."""
    state_dir = Path(tmp_dir) / "fptr10-simulator"
    socket_dir = short_socket_dir()
    socket_path = socket_dir / "fptr.sock"
    library = build_fake_libfptr10(
        Path(tmp_dir) / "fake-libfptr10", default_socket=str(socket_path)
    )
    bridge = Fptr10Bridge(socket_path, SimulatorRegister(state_dir, print_delay=print_delay))
    bridge.start()

    def cleanup() -> None:
        bridge.stop()
        shutil.rmtree(socket_dir, ignore_errors=True)

    return BackendStack(
        register_config={"driver": "fptr10", "lib_path": str(library), "usb_path": "auto"},
        simulator_state_dir=state_dir,
        cleanup=cleanup,
        env={FAKE_SOCKET_ENV: str(socket_path)},
        bridge=bridge,
    )


def start_webrequests_stack(tmp_dir: Path, *, print_delay: float = 0.0) -> BackendStack:
    """WebRequestsEmulator (data dir ``tmp_dir/wr-emulator``) on a free loopback port."""
    data_dir = Path(tmp_dir) / "wr-emulator"
    state_dir = simulator_state_dir(data_dir)
    emulator = WebRequestsEmulator(
        data_dir, register=SimulatorRegister(state_dir, print_delay=print_delay)
    )
    emulator.start()
    return BackendStack(
        register_config={"driver": "webrequests", "url": emulator.url},
        simulator_state_dir=state_dir,
        cleanup=emulator.stop,
        emulator=emulator,
    )
