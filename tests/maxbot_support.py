"""Shared helpers for the MAX bot tests: the MAX Bot API emulator on loopback with its test
controls, a QR code as a real PNG, zbar to read it back, and the schema check of all the
traffic the emulator recorded (tests/maxapi_schema.py)."""

from __future__ import annotations

import shutil
import struct
import subprocess
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import qrcode

import maxapi_schema
from kassa_appliance.channels.maxbot.client import MaxClient
from kassa_appliance.testbeds.maxapi.server import MaxApiEmulator

TOKEN = "f9LHodD0cOJZ0b30xpIJT-test-token-0001"
USER_ID = 4123456
QR = "t=20261201T1200&s=1500.00&fn=9999078900012345&i=17&fp=1234567890&n=1"


@dataclass
class Emulator:
    url: str
    server: MaxApiEmulator

    def _post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        response = httpx.post(f"{self.url}{path}", json=body or {}, timeout=10)
        response.raise_for_status()
        return response.json()

    def _get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=10)
        response.raise_for_status()
        return response.json()

    def write(self, text: str, user_id: int = USER_ID, first_name: str = "Иван") -> Any:
        return self._post(
            f"/_emulator/users/{user_id}/messages", {"text": text, "first_name": first_name}
        )

    def start(self, user_id: int = USER_ID) -> Any:
        return self._post(f"/_emulator/users/{user_id}/start")

    def press(self, payload: str, user_id: int = USER_ID) -> Any:
        return self._post(f"/_emulator/users/{user_id}/press", {"payload": payload})

    def redeliver(self, marker: int) -> Any:
        return self._post(f"/_emulator/updates/{marker}/redeliver")

    def block(self, user_id: int = USER_ID, blocked: bool = True) -> Any:
        return self._post(f"/_emulator/users/{user_id}/block", {"blocked": blocked})

    def delete_chat(self, chat_id: int) -> Any:
        response = httpx.delete(f"{self.url}/_emulator/chats/{chat_id}", timeout=10)
        response.raise_for_status()
        return response.json()

    def faults(self, **values: Any) -> Any:
        return self._post("/_emulator/faults", values)

    def set_token(self, token: str) -> Any:
        return self._post("/_emulator/token", {"token": token})

    def messages(self, chat_id: int) -> list[dict[str, Any]]:
        return list(self._get(f"/_emulator/chats/{chat_id}/messages")["messages"])

    def bot_messages(self, chat_id: int) -> list[dict[str, Any]]:
        return [m for m in self.messages(chat_id) if m["sender"]["is_bot"]]

    def answers(self) -> list[dict[str, Any]]:
        return list(self._get("/_emulator/answers")["answers"])

    def traffic(self) -> list[dict[str, Any]]:
        return list(self._get("/_emulator/traffic")["exchanges"])

    def state(self) -> Any:
        return self._get("/_emulator/state")

    def download(self, url: str) -> bytes:
        response = httpx.get(url, timeout=10)
        response.raise_for_status()
        return response.content

    def client(self, token: str = TOKEN) -> MaxClient:
        return MaxClient(token, self.url)

    def assert_traffic_valid(self) -> int:
        """Every Bot API request and answer recorded so far matches the schema; how many."""
        if not maxapi_schema.SCHEMA_PATH.exists():
            pytest.skip(f"the MAX OpenAPI schema is not at {maxapi_schema.SCHEMA_PATH}")
        exchanges = [e for e in self.traffic() if e["kind"] == "api"]
        problems = [p for e in exchanges for p in maxapi_schema.exchange_errors(e)]
        assert problems == [], "\n".join(problems[:20])
        return len(exchanges)


@pytest.fixture
def max_emulator() -> Iterator[Emulator]:
    server = MaxApiEmulator(TOKEN).start()
    try:
        yield Emulator(server.url, server)
    finally:
        server.stop()


def qr_png(text: str = QR, scale: int = 6) -> bytes:
    """The QR code of ``text`` as a grayscale PNG (zlib + struct: no imaging library)."""
    code = qrcode.QRCode(border=4)
    code.add_data(text)
    code.make(fit=True)
    matrix = code.get_matrix()
    rows = []
    for row in matrix:
        line = bytes(0 if cell else 255 for cell in row for _ in range(scale))
        rows.extend([b"\x00" + line] * scale)
    width = len(matrix[0]) * scale
    height = len(matrix) * scale

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def decode_qr(png: bytes, tmp_path: Path) -> str:
    """What zbar reads in the image (a real QR decoder)."""
    if shutil.which("zbarimg") is None:
        pytest.skip("zbarimg is not installed")
    image = tmp_path / "qr-read.png"
    image.write_bytes(png)
    result = subprocess.run(
        ["zbarimg", "--raw", "-q", str(image)], capture_output=True, text=True, timeout=30
    )
    return result.stdout.strip()
