"""Shared pieces of the b24bot tests and bench: a bot host on the in-process Bitrix24
emulator, a reply renderer (the conversation engine's ``render_outcome`` when it exists,
else a plain one drawing the QR code as a PNG), a zbar decode of a PNG, and polling waits."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.b24bot_render import PlainReply, plain_render, qr_png, render

__all__ = ["PlainReply", "plain_render", "qr_png", "render", "wait_until", "zbar_decode"]

WAIT = 20.0


async def wait_until(predicate: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, f"{what} never happened"
        await asyncio.sleep(0.01)


def zbar_decode(png: bytes) -> str:
    """The text of the one QR code in ``png``, read by ``zbarimg``."""
    assert shutil.which("zbarimg"), "zbarimg is not on PATH"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "qr.png"
        path.write_bytes(png)
        out = subprocess.run(
            ["zbarimg", "--quiet", "--raw", str(path)],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
    return out.stdout.strip()
