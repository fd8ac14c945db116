"""``<data dir>/status.json``: the daemon's status, for `kassa-appliance status`.

The daemon publishes its engine status (and sections beside it, such as the Bitrix24
link's health) there so the CLI can show it without touching the register. Owns writing
it atomically (:func:`write_status_file`), keeping it current without a write per job
(:class:`StatusFileWriter`) and reading it back (:func:`read_status_file`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path

from kassa_appliance.fiscal.engine import EngineStatus

log = logging.getLogger("kassa_appliance.appliance.daemon")

STATUS_FILE_NAME = "status.json"
STATUS_FILE_INTERVAL = 0.5


StatusSection = Callable[[], object]
"""What a part beside the engine adds to ``status.json`` (e.g. ``link``: the Bitrix24
link's loops and the items it gave up on), read each time the file is written."""


def write_status_file(
    data_dir: Path, status: EngineStatus, sections: Mapping[str, StatusSection] | None = None
) -> None:
    """Replace the status file atomically (rename). Not fsynced: it is advisory, rewritten
    on every start, and an fsync per job would cost the queue more than it is worth."""
    path = data_dir / STATUS_FILE_NAME
    extra = {name: section() for name, section in (sections or {}).items()}
    text = json.dumps({"pid": os.getpid(), **asdict(status), **extra}, ensure_ascii=False)
    text += "\n"
    fd, tmp_name = tempfile.mkstemp(dir=data_dir, prefix=f".{STATUS_FILE_NAME}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


class StatusFileWriter:
    """Keeps ``status.json`` current without writing it for every job: at most one write
    per ``interval``, and the latest status is always written at the end of a burst."""

    def __init__(self, data_dir: Path, interval: float = STATUS_FILE_INTERVAL) -> None:
        self._data_dir = data_dir
        self._interval = interval
        self._latest: EngineStatus | None = None
        self._last_write = 0.0
        self._scheduled: asyncio.TimerHandle | None = None
        self._sections: dict[str, StatusSection] = {}

    def add_section(self, name: str, section: StatusSection) -> None:
        """Write ``section()`` under ``name`` beside the engine status from now on."""
        self._sections[name] = section
        self.refresh()

    def refresh(self) -> None:
        """A section beside the engine status changed: write the latest status again."""
        if self._latest is not None:
            self(self._latest)

    def __call__(self, status: EngineStatus) -> None:
        self._latest = status
        if self._scheduled is not None:
            return
        loop = asyncio.get_running_loop()
        delay = self._last_write + self._interval - loop.time()
        if delay <= 0:
            self._write()
        else:
            self._scheduled = loop.call_later(delay, self._write)

    def _write(self) -> None:
        self._scheduled = None
        if self._latest is not None:
            self._last_write = asyncio.get_running_loop().time()
            try:
                write_status_file(self._data_dir, self._latest, self._sections)
            except OSError as error:
                log.warning("cannot write %s: %s", STATUS_FILE_NAME, error)

    def flush(self) -> None:
        if self._scheduled is not None:
            self._scheduled.cancel()
        self._write()


def read_status_file(data_dir: Path) -> dict[str, object] | None:
    try:
        data = json.loads((data_dir / STATUS_FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
