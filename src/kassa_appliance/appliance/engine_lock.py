"""The engine lock: only one engine may drive a register.

The daemon (and a CLI that runs a job itself when no daemon is up) holds an exclusive
``flock`` on ``<data dir>/engine.lock``; the holder writes ``<pid> <daemon|cli>`` into it.
Owns taking it (:func:`engine_lock`, raising :class:`EngineBusy`), waiting for it as the
daemon does (:func:`wait_for_engine_lock`) and saying who holds it
(:func:`describe_lock_holder`, :func:`lock_holder_role`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO

from kassa_appliance.aio import wait_event

log = logging.getLogger("kassa_appliance.appliance.daemon")

LOCK_FILE_NAME = "engine.lock"


class EngineBusy(Exception):
    """Another process (normally the daemon) already drives the register."""


CLI_HOLDER = "cli"
DAEMON_HOLDER = "daemon"
_HOLDER_WORDS = {
    CLI_HOLDER: "a kassa-appliance CLI command",
    DAEMON_HOLDER: "another kassa-appliance daemon",
}
LOCK_POLL_SECONDS = 0.25
"""How often a daemon that found the engine lock held tries it again."""


def _try_engine_lock(data_dir: Path, holder: str) -> IO[str] | None:
    """The lock file, locked and naming us (``<pid> <holder>``), or None if it is held."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = open(data_dir / LOCK_FILE_NAME, "a+", encoding="utf-8")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    except BaseException:
        handle.close()
        raise
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()} {holder}\n")
    handle.flush()
    return handle


def _lock_file_words(data_dir: Path) -> list[str]:
    try:
        return (data_dir / LOCK_FILE_NAME).read_text(encoding="utf-8").split()
    except OSError:
        return []


def lock_holder_role(data_dir: Path) -> str | None:
    """:data:`CLI_HOLDER` or :data:`DAEMON_HOLDER` as the last holder wrote it, else None."""
    words = _lock_file_words(data_dir)
    return words[1] if len(words) > 1 and words[0].isdigit() else None


def describe_lock_holder(data_dir: Path) -> str:
    """Who holds the engine lock, from what the holder wrote into the lock file:
    ``pid 4242 (a kassa-appliance CLI command)``, or ``another process``."""
    words = _lock_file_words(data_dir)
    if not words or not words[0].isdigit():
        return "another process"
    role = _HOLDER_WORDS.get(words[1] if len(words) > 1 else "", "a kassa-appliance process")
    return f"pid {words[0]} ({role})"


@contextlib.contextmanager
def engine_lock(data_dir: Path, *, holder: str = CLI_HOLDER) -> Iterator[IO[str]]:
    """Hold the per-data-dir engine lock; raise EngineBusy if someone else has it."""
    handle = _try_engine_lock(data_dir, holder)
    if handle is None:
        raise EngineBusy(f"{describe_lock_holder(data_dir)} holds {data_dir / LOCK_FILE_NAME}")
    try:
        yield handle
    finally:
        handle.close()


async def wait_for_engine_lock(
    data_dir: Path, stop: asyncio.Event, on_busy: Callable[[str], Awaitable[None]]
) -> IO[str] | None:
    """The engine lock for the daemon, waiting while someone else holds it.

    ``on_busy(holder)`` is called when the lock is found held and again whenever the
    holder changes (a second CLI command took it first), so the reason is logged once per
    holder, not once per poll. Returns the locked file (close it to release), or None when
    ``stop`` was set while waiting. Polling rather than a blocking ``flock`` in a thread
    keeps SIGTERM prompt: there is no thread stuck in the kernel to get back.
    """
    holder: str | None = None
    while not stop.is_set():
        handle = _try_engine_lock(data_dir, DAEMON_HOLDER)
        if handle is not None:
            if holder is not None:
                log.info("the engine lock is free (it was held by %s); starting", holder)
            return handle
        now_held_by = describe_lock_holder(data_dir)
        if now_held_by != holder:
            holder = now_held_by
            await on_busy(holder)
        await wait_event(stop, LOCK_POLL_SECONDS)
    return None
