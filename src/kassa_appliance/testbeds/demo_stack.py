"""A whole appliance on loopback: the Bitrix24 portal emulator (REST + push) in this process,
the real daemon (``python -m kassa_appliance run``) as a subprocess, and a producer client.

Used by ``kassa-appliance demo`` and by ``bench/bitrix_latency.py``::

    async with ApplianceStack(StackSettings(root=folder)) as stack:
        item_id = await stack.publish(job_id, task)

The daemon is configured exactly as on a device (``config.json`` written with
:func:`~kassa_appliance.appliance.config.save_config`) but on the simulated register; it
pairs with the
emulator's admin user while the producer acts as the cashier user, as the Bitrix24 app would.
Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from kassa_appliance.appliance.config import (
    BitrixConfig,
    Config,
    KassaConfig,
    RegisterConfig,
    save_config,
)
from kassa_appliance.appliance.daemon import daemon_command
from kassa_appliance.bitrix.auth import OAuthAuth, TokenFile
from kassa_appliance.bitrix.budget import RestBudget
from kassa_appliance.bitrix.jobs import JOB_ENTITY, JOB_PROPERTIES, publish_job
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.registers.factory import SIMULATOR_TAPE_ENV
from kassa_appliance.testbeds.bitrix24.app import Emulator, oauth_credentials
from kassa_appliance.testbeds.bitrix24.limits import PRODUCER_ADDRESS
from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID, Item

DAEMON_LOG_NAME = "daemon.log"
LINK_POLL_SECONDS = 0.02
STOP_TIMEOUT_SECONDS = 30.0


class StackError(Exception):
    """The stack could not be brought up (or the daemon died); the message says why."""


@dataclass(frozen=True)
class StackSettings:
    root: Path
    """Everything lives under here: ``appliance/`` (the daemon's data dir) and the logs."""
    print_delay: float = 0.0
    """Seconds the simulated register spends printing each document."""
    push_buffer_delay: float | None = None
    """Push frame buffering delay in seconds; None keeps the emulator's realistic default."""
    kassa_id: str = "demo-kassa"
    tape: Callable[[str], None] | None = None
    """Receives each line of paper tape the daemon prints; None: no tape."""
    link_timeout: float = 30.0
    """Seconds the daemon may take to start and link up with the portal."""
    daemon_log_level: str = "info"
    sections: Mapping[str, Any] = field(default_factory=dict)
    """More ``config.json`` sections for the daemon, e.g. ``{"b24bot": {"enabled": True}}``."""
    env: Mapping[str, str] = field(default_factory=dict)
    """More environment for the daemon (``KASSA_DEBUG_HOOKS=1`` …)."""


def daemon_config(pairing: dict[str, Any], settings: StackSettings) -> Config:
    """The configuration the daemon runs on: the emulator portal and the simulator."""
    config = Config(
        bitrix=BitrixConfig.model_validate(
            {
                key: pairing[key]
                for key in ("portal", "client_id", "client_secret", "refresh_token", "token_url")
            }
        ),
        kassa=KassaConfig(id=settings.kassa_id),
        register=RegisterConfig(driver="simulator", print_delay=Decimal(str(settings.print_delay))),
    )
    if not settings.sections:
        return config
    return Config.model_validate({**config.model_dump(), **settings.sections})


def read_rss_kib(pid: int) -> int | None:
    """VmRSS of a live process in KiB (Linux /proc), or None when unavailable."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return None


def job_link_ready(portal: Emulator, push: PushServer) -> bool:
    """The daemon created the job storage on the emulated portal and holds a push connection."""
    entity = portal.state.entities.get(JOB_ENTITY)
    if entity is None or not set(JOB_PROPERTIES) <= set(entity.properties):
        return False
    return push.connection_count >= 1


async def terminate(process: asyncio.subprocess.Process, timeout: float) -> int | None:
    """SIGTERM a live process, wait up to ``timeout`` seconds, then SIGKILL; its exit status."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    return process.returncode


class ApplianceStack:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.data_dir = settings.root / "appliance"
        self.log_path = settings.root / DAEMON_LOG_NAME
        self.push: PushServer | None = None
        self.emulator: Emulator | None = None
        self.producer: RestClient | None = None
        self.daemon: asyncio.subprocess.Process | None = None
        self._log_file: IO[bytes] | None = None
        self._tape_reader: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ApplianceStack:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        push_settings = PushSettings()
        if self.settings.push_buffer_delay is not None:
            delay = self.settings.push_buffer_delay
            push_settings = PushSettings(buffer_delay=(delay, delay))
        self.push = PushServer(push_settings)
        await self.push.start("127.0.0.1", 0)
        self.emulator = Emulator(push=self.push)
        await self.emulator.start()
        save_config(self.data_dir, daemon_config(self.emulator.credentials(), self.settings))
        await self._start_daemon()
        producer_auth = OAuthAuth(
            oauth_credentials(self.emulator.credentials(CASHIER_USER_ID)),
            TokenFile(self.settings.root / "producer-tokens.json"),
        )
        # The Bitrix24 side calls from its own address (its own bucket of the portal's rate
        # limit) and paces itself like the daemon, so its polling never meets a 503.
        self.producer = RestClient(
            producer_auth, local_address=PRODUCER_ADDRESS, budget=RestBudget()
        )
        await self._wait_linked()

    async def _start_daemon(self) -> None:
        env = {
            **os.environ,
            "PYTHONIOENCODING": "utf-8",
            "PYTHONUNBUFFERED": "1",
            **self.settings.env,
        }
        for variable in ("SNAP", "SNAP_DATA", "NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            env.pop(variable, None)  # a plain process, not a snap service
        if self.settings.tape is not None:
            env[SIMULATOR_TAPE_ENV] = "stdout"
        else:
            env.pop(SIMULATOR_TAPE_ENV, None)
        self.settings.root.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.daemon = await asyncio.create_subprocess_exec(
            *daemon_command(self.data_dir, self.settings.daemon_log_level),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE if self.settings.tape else asyncio.subprocess.DEVNULL,
            stderr=self._log_file,
            env=env,
        )
        if self.settings.tape is not None:
            self._tape_reader = asyncio.create_task(self._forward_tape(self.settings.tape))

    async def _forward_tape(self, tape: Callable[[str], None]) -> None:
        assert self.daemon is not None and self.daemon.stdout is not None
        while line := await self.daemon.stdout.readline():
            tape(line.decode("utf-8", errors="replace").rstrip("\n"))

    def linked(self) -> bool:
        """The daemon created the job storage and holds a push connection."""
        assert self.emulator is not None and self.push is not None
        return job_link_ready(self.emulator, self.push)

    async def _wait_linked(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.link_timeout
        while not self.linked():
            self.check_daemon()
            if loop.time() >= deadline:
                raise StackError(
                    f"the daemon did not link up with the portal within "
                    f"{self.settings.link_timeout:g} s\n{self.log_tail()}"
                )
            await asyncio.sleep(LINK_POLL_SECONDS)

    def check_daemon(self) -> None:
        """Raise StackError if the daemon has exited."""
        if self.daemon is not None and self.daemon.returncode is not None:
            raise StackError(
                f"the daemon exited with status {self.daemon.returncode}\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no daemon log)"
        tail = text.splitlines()[-lines:]
        return f"last lines of {self.log_path}:\n" + "\n".join(tail)

    async def stop_daemon(self) -> int | None:
        """SIGTERM the daemon (it finishes the receipt in flight) and wait; its exit status."""
        daemon = self.daemon
        if daemon is None:
            return None
        await terminate(daemon, STOP_TIMEOUT_SECONDS)
        if self._tape_reader is not None:
            await self._tape_reader
            self._tape_reader = None
        return daemon.returncode

    async def kill_daemon(self) -> None:
        """SIGKILL the daemon (a power cut: nothing is finished or saved) and reap it."""
        daemon = self.daemon
        if daemon is not None and daemon.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                daemon.kill()
            await daemon.wait()
        if self._tape_reader is not None:
            await self._tape_reader
            self._tape_reader = None

    async def restart_daemon(self) -> None:
        """Start the daemon again after :meth:`stop_daemon` or :meth:`kill_daemon`."""
        await self.stop_daemon()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        await self._start_daemon()

    async def stop(self) -> None:
        """Stop the daemon first (its last write-backs still reach the portal), then the rest."""
        try:
            await self.stop_daemon()
        finally:
            if self.producer is not None:
                await self.producer.aclose()
            if self.emulator is not None:
                await self.emulator.stop()
            if self.push is not None:
                await self.push.stop()
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    # -- the producer ------------------------------------------------------------------

    async def publish(self, job_id: str, task: Any, *, ring: bool = True) -> int:
        """Store a KASSAJOB item (and ring the doorbell) as the cashier; the item id."""
        assert self.producer is not None
        return await publish_job(
            self.producer,
            job_id=job_id,
            kassa=self.settings.kassa_id,
            task=task,
            source="demo",
            ring=ring,
        )

    async def ring(self, job_id: str) -> None:
        """Ring the doorbell for a stored job."""
        assert self.producer is not None
        await self.producer.result(
            "pull.application.event.add",
            {"COMMAND": "kassa.job", "PARAMS": {"job": job_id, "kassa": self.settings.kassa_id}},
        )

    async def fetch_item(self, job_id: str) -> dict[str, Any] | None:
        """The KASSAJOB item for ``job_id`` read over REST, as a producer sees it."""
        assert self.producer is not None
        items = await self.producer.result(
            "entity.item.get",
            {"ENTITY": JOB_ENTITY, "FILTER": {"NAME": job_id}, "SORT": {"ID": "ASC"}},
        )
        for item in items or []:
            if isinstance(item, dict) and item.get("NAME") == job_id:
                return item
        return None

    def stored_item(self, item_id: int) -> Item | None:
        """The KASSAJOB item straight from the emulator's memory (cheap; for benchmarks)."""
        assert self.emulator is not None
        entity = self.emulator.state.entities.get(JOB_ENTITY)
        return None if entity is None else entity.items.get(item_id)
