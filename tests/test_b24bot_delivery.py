"""Confirm in the chat → the receipt printed on the simulator → the QR image back in the
chat, through the real reply-delivery worker and the b24chat sender (the bench's pipeline,
bench/b24bot.py, on loopback). The image is decoded with zbar and must be the QR string the
register returned; the job gets exactly one reply."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.b24bot import one_round, pipeline
from bench.b24bot_render import render

from b24bot_support import wait_until, zbar_decode
from kassa_appliance.testbeds.bitrix24.rest_imbot_state import imbot_portal
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID


async def test_the_qr_image_in_the_chat_is_the_registers_qr(tmp_path: Path) -> None:
    async with pipeline(tmp_path, active_poll=1.0, render=render()) as run:
        total, poll_wait = await one_round(run, 7)
        assert 0 <= poll_wait <= total
        portal = imbot_portal(run.emulator.state)
        (job_id,) = run.handled_at
        job = run.journal.get(job_id)
        assert job is not None and job.qr
        images = [
            m for m in portal.sent_by(run.bot_id, str(CASHIER_USER_ID)) if m.params.get("FILE_ID")
        ]
        assert len(images) == 1
        assert zbar_decode(portal.file_bytes(images[0].params["FILE_ID"][0])) == job.qr
        await wait_until(lambda: run.worker.status().get("sent") == 1, "the delivery recorded", 10)
        await asyncio.sleep(0.5)  # the worker has nothing more to send
        images_after = [
            m for m in portal.sent_by(run.bot_id, str(CASHIER_USER_ID)) if m.params.get("FILE_ID")
        ]
        assert len(images_after) == 1
