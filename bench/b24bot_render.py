"""Reply rendering for the b24bot bench and tests: the conversation engine's
``render_outcome`` (channels/conversation/render.py) when it exists, else a plain one —
a summary line, the QR code drawn as a grayscale PNG (zlib, no imaging library) and a
check link — so the chat path can be measured and tested on its own."""

from __future__ import annotations

import importlib
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import qrcode

from kassa_appliance.channels.delivery.protocol import Outcome


def qr_png(text: str, scale: int = 6, border: int = 4) -> bytes:
    """A grayscale PNG of the QR code of ``text`` (no imaging library needed)."""
    code = qrcode.QRCode(border=0)
    code.add_data(text)
    code.make(fit=True)
    matrix = code.get_matrix()
    size = (len(matrix) + 2 * border) * scale
    rows = []
    blank = b"\xff" * size
    for _ in range(border * scale):
        rows.append(blank)
    for line in matrix:
        pixels = b"\xff" * (border * scale)
        pixels += b"".join((b"\x00" if cell else b"\xff") * scale for cell in line)
        pixels += b"\xff" * (border * scale)
        rows.extend([pixels] * scale)
    rows.extend([blank] * (border * scale))
    raw = b"".join(b"\x00" + row for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


@dataclass(frozen=True)
class PlainReply:
    text: str
    png: bytes | None
    check_url: str | None


def plain_render(outcome: Outcome) -> PlainReply:
    """Summary, QR PNG and check link; stands in for ``render_outcome`` where it is absent."""
    if outcome.state != "done" or outcome.qr is None:
        return PlainReply(f"Чек не пробит: {outcome.error_message or outcome.state}", None, None)
    url = f"https://check.ofd.ru/rec/{outcome.qr.replace('&', '%26')}"
    return PlainReply(f"Чек пробит: {outcome.job_id}", qr_png(outcome.qr), url)


def render() -> Callable[[Outcome], Any]:
    try:
        module = importlib.import_module("kassa_appliance.channels.conversation.render")
    except ImportError:
        return plain_render
    found: Callable[[Outcome], Any] = module.render_outcome
    return found
