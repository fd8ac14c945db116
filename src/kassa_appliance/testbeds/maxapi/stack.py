"""An office with a MAX bot, all on loopback: the Bitrix24 portal emulator with its push
server (buffering delay 0), the MAX Bot API emulator, and the real daemon as a subprocess
on the simulated register with ``maxbot.enabled`` — for the end-to-end tests and the bench.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass, field
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
from kassa_appliance.bitrix.jobs import JOB_ENTITY
from kassa_appliance.channels.maxbot.settings import MaxBotConfig
from kassa_appliance.testbeds.bitrix24.app import Emulator as Portal
from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings
from kassa_appliance.testbeds.demo_stack import job_link_ready, read_rss_kib, terminate
from kassa_appliance.testbeds.maxapi.server import MaxApiEmulator

PAIRING_KEYS = ("portal", "client_id", "client_secret", "refresh_token", "token_url")
LINK_TIMEOUT = 60.0
STOP_TIMEOUT_SECONDS = 60.0


@dataclass
class MaxOfficeSettings:
    root: Path
    token: str
    cashiers: str
    """``maxbot.cashiers``, e.g. ``4123456=Мастер Иванов И.И.``"""
    kassa_id: str = "kassa-max"
    poll_timeout: int = 30
    log_level: str = "info"
    environment: dict[str, str] = field(default_factory=dict)
    """Extra environment of the daemon (debug hooks)."""
    bot_enabled: bool = True
    """False: the same office with ``maxbot.enabled`` off (the bench's baseline)."""


class MaxOffice:
    def __init__(self, settings: MaxOfficeSettings) -> None:
        self.settings = settings
        self.data_dir = settings.root / "appliance"
        self.log_path = settings.root / "daemon.log"
        self.push: PushServer | None = None
        self.portal: Portal | None = None
        self.max: MaxApiEmulator | None = None
        self.daemon: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    async def __aenter__(self) -> MaxOffice:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def max_url(self) -> str:
        assert self.max is not None
        return self.max.url

    def config(self) -> Config:
        assert self.portal is not None and self.max is not None
        pairing = self.portal.credentials()
        maxbot = MaxBotConfig.model_validate(
            {
                "enabled": self.settings.bot_enabled,
                "token": self.settings.token,
                "api_url": self.max.url,
                "poll_timeout": self.settings.poll_timeout,
                "cashiers": self.settings.cashiers,
                "kassas": [self.settings.kassa_id],
                "ask_place": False,
            }
        )
        return Config(
            register=RegisterConfig(driver="simulator"),
            kassa=KassaConfig(id=self.settings.kassa_id),
            bitrix=BitrixConfig.model_validate({k: pairing[k] for k in PAIRING_KEYS}),
            maxbot=maxbot,
        )

    async def start(self) -> None:
        self.push = PushServer(PushSettings(buffer_delay=(0.0, 0.0)))
        await self.push.start("127.0.0.1", 0)
        self.portal = Portal(push=self.push)
        await self.portal.start()
        self.max = MaxApiEmulator(self.settings.token).start()
        save_config(self.data_dir, self.config())
        await self.start_daemon()
        await self.wait_linked()

    async def start_daemon(self) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("NOTIFY_", "WATCHDOG_", "SNAP", "KASSA_"))
        }
        env.update({"PYTHONUNBUFFERED": "1", **self.settings.environment})
        self.settings.root.mkdir(parents=True, exist_ok=True)
        if self._log is None:
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.daemon = await asyncio.create_subprocess_exec(
            *daemon_command(self.data_dir, self.settings.log_level),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=self._log,
            env=env,
        )

    def linked(self) -> bool:
        assert self.portal is not None and self.push is not None
        return job_link_ready(self.portal, self.push)

    async def wait_linked(self) -> None:
        async with asyncio.timeout(LINK_TIMEOUT):
            while not self.linked():
                if self.daemon is not None and self.daemon.returncode is not None:
                    raise RuntimeError(f"the daemon exited:\n{self.log_tail()}")
                await asyncio.sleep(0.05)

    def jobs(self) -> list[Any]:
        assert self.portal is not None
        entity = self.portal.state.entities.get(JOB_ENTITY)
        return [] if entity is None else list(entity.items.values())

    def rss_kib(self) -> int | None:
        return None if self.daemon is None else read_rss_kib(self.daemon.pid)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def kill_daemon(self) -> None:
        if self.daemon is not None and self.daemon.returncode is None:
            self.daemon.send_signal(signal.SIGKILL)
            await self.daemon.wait()

    async def stop_daemon(self) -> int | None:
        if self.daemon is None:
            return None
        return await terminate(self.daemon, STOP_TIMEOUT_SECONDS)

    async def stop(self) -> None:
        await self.stop_daemon()
        if self.max is not None:
            self.max.stop()
            self.max = None
        if self.portal is not None:
            await self.portal.stop()
            self.portal = None
        if self.push is not None:
            await self.push.stop()
            self.push = None
        if self._log is not None:
            self._log.close()
            self._log = None
