"""Conformance: the official Bitrix24 JS SDK pull client (@bitrix24/b24jssdk, MIT) runs under
Node against our push server emulator, for server versions 3 (text), 4 (protobuf: the SDK
asks for ``binaryMode=true``) and 5 (JSON-RPC with a JWT, ``mack:`` acks).

The node project lives in tests/conformance/ (exact versions pinned, lock file without
registry URLs); it is installed with ``npm ci`` into a temporary directory, never into the
repository. Without node/npm or registry access the test is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from kassa_appliance.testbeds.bitrix24.push import PushServer, PushSettings

PROJECT = Path(__file__).parent / "conformance"
USER_ID = 7
GUARD = 30.0


@pytest.fixture(scope="session")
def jssdk_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node/npm are not installed (scripts/install-system-deps installs them)")
    target = tmp_path_factory.mktemp("jssdk")
    for name in ("package.json", "package-lock.json", "pull-client.mjs"):
        shutil.copy(PROJECT / name, target / name)
    try:
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=target,
            capture_output=True,
            text=True,
            timeout=240,
            env={**os.environ, "npm_config_cache": str(target / ".npm-cache")},
        )
    except subprocess.TimeoutExpired:
        pytest.skip("npm ci timed out (no npm registry access?)")
    if done.returncode != 0:
        pytest.skip(f"npm ci failed (no npm registry access?): {done.stderr.strip()[-400:]}")
    return target


@asynccontextmanager
async def rest_stub(push: PushServer) -> AsyncIterator[str]:
    """A loopback REST endpoint answering the SDK's pull.application.config.get."""
    methods: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        headers: dict[str, str] = {}
        await reader.readline()
        while (line := (await reader.readline()).decode()) not in ("\r\n", ""):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        request = json.loads(await reader.readexactly(int(headers.get("content-length", "0"))))
        methods.append(request["method"])
        if request["method"] == "pull.application.config.get":
            status, body = 200, {"result": push.channel_config(USER_ID), "time": {}}
        else:
            status, body = 404, {"error": "ERROR_METHOD_NOT_FOUND", "error_description": "-"}
        payload = json.dumps(body).encode()
        writer.write(
            f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode()
            + payload
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/rest/"
    finally:
        server.close()


async def next_event(stdout: asyncio.StreamReader, wanted: str) -> dict[str, Any]:
    while True:
        line = await asyncio.wait_for(stdout.readline(), GUARD)
        assert line, f"the node client exited before sending {wanted!r}"
        event: dict[str, Any] = json.loads(line)
        assert event["event"] != "error", event
        if event["event"] == wanted:
            return event


@asynccontextmanager
async def js_pull_client(
    jssdk_project: Path, settings: PushSettings
) -> AsyncIterator[tuple[PushServer, asyncio.StreamReader]]:
    """Our push server, a REST stub and the official client under Node, connected to them;
    yields the server and the client's event stream (one JSON object per line)."""
    push = PushServer(settings)
    await push.start("127.0.0.1", 0)
    try:
        async with rest_stub(push) as rest_url:
            node = await asyncio.create_subprocess_exec(
                shutil.which("node") or "node",
                "pull-client.mjs",
                cwd=jssdk_project,
                env={**os.environ, "KASSA_REST_URL": rest_url, "KASSA_USER_ID": str(USER_ID)},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            assert node.stdout is not None
            try:
                yield push, node.stdout
            finally:
                node.send_signal(signal.SIGKILL)
                await node.wait()
    finally:
        await push.stop()


@pytest.mark.parametrize(
    ("version", "mode"), [(3, "text"), (4, "protobuf"), (5, "jsonrpc")], ids=["v3", "v4", "v5"]
)
def test_official_js_pull_client_receives_doorbells(
    jssdk_project: Path, version: int, mode: str
) -> None:
    settings = PushSettings(
        version=version, buffer_delay=(0.1, 0.1), ping_interval=5.0, jsonrpc_ping_interval=1.0
    )

    async def scenario() -> None:
        async with js_pull_client(jssdk_project, settings) as (push, events):
            rest = await next_event(events, "rest")
            assert (rest["method"], rest["status"]) == ("pull.application.config.get", 200)
            assert (await next_event(events, "connected"))["mode"] == mode
            while push.connection_count == 0:
                await asyncio.sleep(0.02)
            await push.publish_app_event("kassa.job", {"job": "other"}, user_ids=[USER_ID + 1])
            mids = [
                await push.publish_app_event("kassa.job", {"job": "J-1", "kassa": "k"}),
                await push.publish_app_event(
                    "kassa.job", {"job": "J-2", "kassa": "k"}, user_ids=[USER_ID]
                ),
            ]
            first = await next_event(events, "message")
            second = await next_event(events, "message")
            assert [first["params"], second["params"]] == [
                {"job": "J-1", "kassa": "k"},
                {"job": "J-2", "kassa": "k"},
            ]
            assert first["command"] == "kassa.job"
            assert first["extra"]["revision_web"] == 19
            if mode == "jsonrpc":
                for _ in range(100):
                    if set(mids) <= set(push.stats.acks):
                        break
                    await asyncio.sleep(0.02)
                assert set(mids) <= set(push.stats.acks)
            else:
                assert push.stats.frames_sent == 1  # both records went in one frame

    asyncio.run(asyncio.wait_for(scenario(), 120))


def test_official_js_pull_client_follows_channel_expire(jssdk_project: Path) -> None:
    """Our channel_expire notices (shared: reconnect + new_channel, private: get_config)
    must be understood: afterwards only the new channels are published to."""
    settings = PushSettings(version=4, buffer_delay=(0.05, 0.05), ping_interval=5.0)

    async def scenario() -> None:
        async with js_pull_client(jssdk_project, settings) as (push, events):
            await next_event(events, "connected")
            push.renew_channels()
            await next_event(events, "rest")  # the private channel's get_config
            while push.stats.connections < 2 or push.connection_count == 0:
                await asyncio.sleep(0.02)
            await push.publish_app_event("kassa.job", {"job": "J-new", "kassa": "k"})
            message = await next_event(events, "message")
            assert message["params"] == {"job": "J-new", "kassa": "k"}

    asyncio.run(asyncio.wait_for(scenario(), 120))
