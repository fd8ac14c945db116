"""The daemon's status file: current, atomic, and not rewritten for every job."""

from __future__ import annotations

import asyncio
from pathlib import Path

from kassa_appliance.appliance.daemon import StatusFileWriter, read_status_file
from kassa_appliance.fiscal.engine import EngineStatus


def status(queue_depth: int) -> EngineStatus:
    return EngineStatus(register="simulator", register_online=True, queue_depth=queue_depth)


async def test_a_burst_of_changes_is_written_once_now_and_once_at_its_end(tmp_path: Path) -> None:
    writer = StatusFileWriter(tmp_path, interval=0.2)
    path = tmp_path / "status.json"
    writes = []

    for depth in range(100, 0, -1):
        writer(status(depth))
        if path.exists():
            writes.append(path.stat().st_mtime_ns)
        await asyncio.sleep(0)
    first = read_status_file(tmp_path)
    assert first is not None and first["queue_depth"] == 100
    await asyncio.sleep(0.3)

    last = read_status_file(tmp_path)
    assert last is not None and last["queue_depth"] == 1
    assert len(set(writes)) == 1, "the burst itself must not rewrite the file"
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"], "no temp files left"


async def test_flush_writes_the_latest_status_at_once(tmp_path: Path) -> None:
    writer = StatusFileWriter(tmp_path, interval=60)
    writer(status(5))
    writer(status(4))
    writer.flush()
    written = read_status_file(tmp_path)
    assert written is not None and written["queue_depth"] == 4
