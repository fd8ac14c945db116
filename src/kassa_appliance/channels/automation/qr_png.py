"""The receipt's QR code as a small PNG (black on white, 1 bit), for the deal's timeline.

``qrcode`` (already a dependency, for the simulator's paper tape) gives the module matrix;
the PNG is written here with ``zlib`` so no imaging library is needed.
"""

from __future__ import annotations

import struct
import zlib

import qrcode

SCALE = 4
BORDER = 2


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def qr_png(text: str, *, scale: int = SCALE) -> bytes:
    code = qrcode.QRCode(border=BORDER)
    code.add_data(text)
    code.make(fit=True)
    matrix = code.get_matrix()
    size = len(matrix) * scale
    rows = bytearray()
    for modules in matrix:
        bits = "".join(("0" if dark else "1") * scale for dark in modules)
        bits += "0" * (-len(bits) % 8)
        line = bytes([0]) + int(bits, 2).to_bytes(len(bits) // 8, "big")
        rows += line * scale
    header = struct.pack(">IIBBBBB", size, size, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(rows), 9))
        + _chunk(b"IEND", b"")
    )
