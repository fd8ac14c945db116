"""A fuzz of 10,000 malformed requests against the running daemon's LAN API.

A seeded generator (reproducible: the seed is in the test) mixes bodies that are not JSON,
JSON of the wrong shape, limit breakers (depth, long strings, long numbers, NaN, UTF-16),
wrong paths, methods and device ids, bad credentials, and KKMServer garbage — sent 24 at a
time over loopback. The daemon must answer every one (no 5xx, a JSON body), stay up, print
nothing for them, and a valid receipt sent while the fuzz runs must be printed within
:data:`VALID_BOUND` seconds of being sent.
"""

from __future__ import annotations

import asyncio
import base64
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lan_support import AUTH, LanDaemon
from sample_tasks import sell

SEED = 20261201
REQUESTS = 10_000
CONCURRENCY = 24
VALID_BOUND = 10.0
"""Seconds from POST to ``ready`` for a valid receipt while the fuzz runs."""
ANSWERED = {200, 201, 400, 401, 403, 404, 405, 409, 413, 429, 501}
"""429: the guessing client is locked out after 10 wrong passwords (channels/lan/throttle)."""
GOOD_AUTH = "Basic " + base64.b64encode(f"{AUTH[0]}:{AUTH[1]}".encode()).decode()

Request = tuple[str, str, bytes, dict[str, str]]
ODD_POSTS = [
    "/api/v2/settings",
    "/api/v2/devices/9",
    "/api/v2/setDefaultDevice",
    "/api/v2/activateDevice?deviceID=3",
    "/api/v2/operations/queryNothing",
]


def _garbage_json(rng: random.Random) -> Any:
    choices: list[Any] = [
        None,
        True,
        rng.randint(-(10**6), 10**6),
        rng.random(),
        "x" * rng.randint(0, 50),
        [],
        {},
        [rng.randint(0, 9)],
        {"type": rng.choice(["sell", "", 7, None, "sellX", "reportX "])},
    ]
    return rng.choice(choices)


def _body(rng: random.Random) -> bytes:
    kind = rng.randrange(16)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randint(1, 200)))
    if kind == 1:
        text = json.dumps({"uuid": "f", "request": [sell()]})
        return text[: rng.randint(1, len(text) - 1)].encode()
    if kind == 2:
        depth = rng.choice([33, 100, 5000])
        return b'{"uuid":"d","request":' + b"[" * depth + b"]" * depth + b"}"
    if kind == 3:
        return (
            json.dumps({"uuid": "n", "request": [{"type": "sell", "total": 1}]})
            .replace("1}", "1" * rng.choice([41, 5000]) + "}")
            .encode()
        )
    if kind == 4:
        return b'{"uuid": "nan", "request": [{"type": "sell", "total": NaN}]}'
    if kind == 5:
        return json.dumps({"uuid": "u16", "request": {"type": "reportX"}}).encode("utf-16")
    if kind == 6:
        return json.dumps({"uuid": _garbage_json(rng), "request": [{"type": "reportX"}]}).encode()
    if kind == 7:
        return json.dumps({"uuid": f"g{rng.random()}", "request": _garbage_json(rng)}).encode()
    if kind == 8:
        return json.dumps({"uuid": "two", "request": [sell(), sell()]}).encode()
    if kind == 9:
        return json.dumps({"uuid": "u" * rng.randint(101, 3000), "request": sell()}).encode()
    if kind == 10:
        return json.dumps([{"uuid": "list", "request": sell()}]).encode()
    if kind == 11:
        return b'{"uuid": "\\ud800", "request": {"type": "reportX"}}'
    if kind == 12:
        return json.dumps({"uuid": "k", "request": [{"type": "sell", "x" * 300: 1}]}).encode()
    if kind == 13:
        return b"\xef\xbb\xbf" + bytes(rng.randrange(32, 127) for _ in range(40))
    if kind == 14:
        return json.dumps({"uuid": "big", "request": [{"type": "x", "t": "y" * 70_000}]}).encode()
    return b""


def _kkm(rng: random.Random) -> bytes:
    bodies: list[Any] = [
        {"Command": rng.choice([None, 5, "", "Fly", "registercheck", "List "]), "Timeout": 0},
        {"Command": "List", "NumDevice": rng.choice([2, -1, "x", [1], 10**30])},
        {
            "Command": "RegisterCheck",
            "Timeout": 0,
            "IdCommand": f"kf{rng.random()}",
            "CheckStrings": rng.choice([None, 5, [5], [{"Register": {"Name": 5}}]]),
        },
        {"Command": "DepositingCash", "Amount": rng.choice([-1, 0, "abc", None, True])},
        {"Command": "GetRezult", "IdCommand": rng.choice([None, "", "missing", 7])},
        {"Command": "GetDataCheck", "FiscalNumber": rng.choice([5, "x", -1]), "Timeout": 0},
        {"Command": "RegisterCheck", "IdCommand": "i" * 150, "Timeout": 0},
    ]
    return json.dumps(rng.choice(bodies)).encode()


def generate(rng: random.Random) -> Iterator[Request]:
    good_auth = "Basic " + base64.b64encode(f"{AUTH[0]}:{AUTH[1]}".encode()).decode()
    for _ in range(REQUESTS):
        headers = {"Authorization": good_auth, "Content-Type": "application/json"}
        roll = rng.random()
        if roll < 0.05:
            headers["Authorization"] = rng.choice(
                ["Basic !!!", "Basic " + base64.b64encode(b"kassa1c:nope").decode(), "Bearer x"]
            )
        elif roll < 0.07:
            del headers["Authorization"]
        target = rng.random()
        if target < 0.55:
            path = rng.choice(["/api/v2/requests", "/requests", "/requests/"])
            if rng.random() < 0.1:
                path += "?deviceID=" + rng.choice(["2", "x" * 300, "%00", "default"])
            yield "POST", path, _body(rng), headers
        elif target < 0.75:
            yield "POST", rng.choice(["/Execute", "/Execute/sync"]), _kkm(rng), headers
        elif target < 0.85:
            uuid = rng.choice(["missing", "%2e%2e", "x" * 500, "%ff%fe", "a#b"])
            method = rng.choice(["GET", "DELETE"])
            yield method, rng.choice(["/api/v2/requests/", "/requests/"]) + uuid, b"", headers
        elif target < 0.92:
            path = rng.choice(ODD_POSTS)
            yield rng.choice(["PUT", "POST"]), path, _body(rng), headers
        else:
            path = rng.choice(["/nope", "/api/v3/requests", "/api/v2/", "/stat/requests/x"])
            yield rng.choice(["GET", "POST", "PATCH"]), path, _body(rng), headers


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[LanDaemon]:
    appliance = LanDaemon(tmp_path / "data")
    appliance.start()
    try:
        yield appliance
    finally:
        appliance.stop()


async def _valid_receipt(client: httpx.AsyncClient, uuid: str) -> float:
    started = time.monotonic()
    posted = await client.post("/api/v2/requests", json={"uuid": uuid, "request": [sell()]})
    assert posted.status_code == 201, posted.text
    while True:
        entry = (await client.get(f"/api/v2/requests/{uuid}")).json()["results"][0]
        if entry["status"] == "ready":
            return time.monotonic() - started
        assert entry["status"] in ("wait", "inProgress"), entry
        assert time.monotonic() - started < VALID_BOUND, f"{uuid} delayed beyond the bound"
        await asyncio.sleep(0.05)


async def test_fuzz_every_malformed_request_is_answered(daemon: LanDaemon) -> None:
    rng = random.Random(SEED)
    requests = list(generate(rng))
    unanswered: list[str] = []
    counts: dict[int, int] = {}
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    # Wrong passwords come from their own address (as a guesser would): its lock-out must
    # not stop the garbage with the right password from reaching the parsers.
    fuzzer = httpx.AsyncHTTPTransport(local_address="127.0.0.2", limits=limits)
    guesser = httpx.AsyncHTTPTransport(local_address="127.0.0.3", limits=limits)
    async with (
        httpx.AsyncClient(base_url=daemon.base, timeout=30, transport=fuzzer) as client,
        httpx.AsyncClient(base_url=daemon.base, timeout=30, transport=guesser) as guessing,
    ):
        gate = asyncio.Semaphore(CONCURRENCY)

        async def send(request: Request) -> None:
            method, path, body, headers = request
            wrong = headers.get("Authorization", GOOD_AUTH) != GOOD_AUTH
            async with gate:
                response = await (guessing if wrong else client).request(
                    method, path, content=body, headers=headers
                )
            counts[response.status_code] = counts.get(response.status_code, 0) + 1
            try:
                response.json()
            except ValueError:
                unanswered.append(f"{method} {path[:60]}: not JSON ({response.status_code})")
            if response.status_code not in ANSWERED:
                unanswered.append(f"{method} {path[:60]}: HTTP {response.status_code}")

        started = time.monotonic()
        fuzz = asyncio.gather(*(send(request) for request in requests))
        authed = httpx.AsyncClient(base_url=daemon.base, auth=AUTH, timeout=30)
        async with authed:
            await asyncio.sleep(0.5)
            first = await _valid_receipt(authed, "valid-1")
            await asyncio.sleep(2.0)
            second = await _valid_receipt(authed, "valid-2")
        await fuzz
        elapsed = time.monotonic() - started
    assert not unanswered, unanswered[:10]
    assert sum(counts.values()) == REQUESTS
    assert counts.get(400, 0) > REQUESTS // 3, counts
    assert daemon.alive(), "the daemon survived"
    assert daemon.sells == 2, "only the two valid receipts were printed"
    print(f"fuzz: {REQUESTS} requests in {elapsed:.1f} s; valid receipts {first:.2f} s, "
          f"{second:.2f} s; answers {sorted(counts.items())}")  # fmt: skip
