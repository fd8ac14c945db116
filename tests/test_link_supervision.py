"""The Bitrix24 link never dies silently: an unexpected error in one of its loops is logged
with its traceback, counted (``link`` section of ``status.json``), and the loop restarts;
jobs keep flowing. Real emulator, journal, engine, simulator and status file writer."""

# The fixtures imported from test_jobs/test_bitrix_link are parameters of the same name.
# ruff: noqa: F811

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from kassa_appliance.appliance.daemon import StatusFileWriter, read_status_file
from kassa_appliance.bitrix.jobs import DEVICE_ENTITY, publish_job
from kassa_appliance.bitrix.supervisor import LinkHealth
from sample_tasks import sell
from test_jobs import KASSA, World, props, running, wait_until, world  # noqa: F401


class FlakyStatus:
    """A device status source that fails its first ``failures`` calls (a bug elsewhere)."""

    def __init__(self, failures: int) -> None:
        self.left = failures

    def __call__(self) -> dict[str, Any]:
        if self.left > 0:
            self.left -= 1
            raise RuntimeError("status source broke")
        return {"queue": 0}


async def test_a_loop_that_raises_is_logged_counted_in_status_and_restarted(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = world.root / "data"
    data_dir.mkdir()
    writer = StatusFileWriter(data_dir, interval=0.01)
    health = LinkHealth(on_change=writer.refresh)
    writer.add_section("link", health.snapshot)
    world.engine.add_listener(writer)
    link = world.link(device_status=FlakyStatus(3), health=health)
    with caplog.at_level(logging.ERROR, logger="kassa_appliance.bitrix.supervisor"):
        async with running(link):
            await wait_until(lambda: DEVICE_ENTITY in world.emulator.state.entities)
            # The heartbeat restarted after three failures and wrote the device item.
            await wait_until(lambda: bool(world.emulator.state.entities[DEVICE_ENTITY].items), 20)
            job_id = str(uuid.uuid4())
            await publish_job(world.producer, job_id=job_id, kassa=KASSA, task=sell())
            await link.reconcile()
            await wait_until(lambda: props(world.item(job_id)).get("STATE") == "done")
            assert not any(task.done() for task in link.tasks())
            writer.flush()
    heartbeat = health.snapshot()["loops"]["heartbeat"]
    assert heartbeat["errors"] == 3
    assert "RuntimeError: status source broke" in heartbeat["last_error"]
    assert any(r.exc_info for r in caplog.records), "no traceback logged"
    status = read_status_file(data_dir)
    assert status is not None
    assert status["link"]["loops"]["heartbeat"]["errors"] == 3  # type: ignore[index]
