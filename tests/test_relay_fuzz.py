"""Fuzzing the relay's HTTP surface: 10,000+ malformed, unauthenticated or wrongly
authenticated requests against a relay process. Every one is answered (a status and a JSON
body), none is an internal error, the relay stays up, and nothing reaches the kassa's
queue."""

from __future__ import annotations

import asyncio
import json
import random
import string
from pathlib import Path
from typing import Any

import aiohttp

from kassa_appliance.bitrix.phpquery import build_query
from kassa_appliance.channels.relay.wire import JOBS_STREAM, durable_name
from kassa_relay.bus import Bus, BusOptions
from relay_cluster import RELAY_PASSWORD, NatsCluster, register, start_relays

REQUESTS = 10_200
CONCURRENCY = 8
SEED = 20261201
FORM = "application/x-www-form-urlencoded"


def junk(rng: random.Random, size: int) -> str:
    alphabet = string.printable + "[]%&=\x00\u00e9\u2028\ud7ff\U0001f600"
    return "".join(rng.choice(alphabet) for _ in range(size))


def broken_check(rng: random.Random, secret: str) -> dict[str, Any]:
    """A check with the right cashbox but always at least one rule broken."""
    check: dict[str, Any] = {
        "type": rng.choice(["sell", "sellreturn", "prepayment", "credit"]),
        "uuid": f"check|fuzz|{rng.randrange(10**9)}",
        "items": [{"name": "x", "price": "1.00", "quantity": "1", "sum": "1.00", "vat": "1"}],
        "payments": [{"type": "cash", "sum": "1.00"}],
        "cashbox_params": {"RELAY": {"KASSA": "k1", "SECRET": secret}},
    }
    breakage = rng.randrange(7)
    if breakage == 0:
        check["type"] = junk(rng, rng.randrange(1, 30))
    elif breakage == 1:
        del check["items"]
    elif breakage == 2:
        check["items"][0]["price"] = rng.choice(["abc", "-1", "1e999", "NaN", "1.001", ""])
    elif breakage == 3:
        check["payments"] = [{"type": junk(rng, 5), "sum": "1"}]
    elif breakage == 4:
        check["items"][0]["vat"] = str(rng.randrange(2, 10**6))  # not in the VAT list
    elif breakage == 5:
        check["uuid"] = "u" * rng.randrange(201, 400)
    else:
        check["items"] = [check["items"][0]] * rng.randrange(101, 130)
    return check


def tree(rng: random.Random, depth: int = 0) -> Any:
    """A random JSON value: what a confused or hostile client might send for any field."""
    pick = rng.randrange(8 if depth < 4 else 5)
    if pick == 0:
        return None
    if pick == 1:
        return rng.choice([True, False, 0, -1, 10**12, 1.5, -0.0, 1e300])
    if pick in (2, 3):
        return rng.choice(["", "sell", "income", "20", "1", "cash", "self", junk(rng, 8)])
    if pick == 4:
        return rng.choice(["01.12.2026", "none", "vat20", "full_payment", "commodity"])
    if pick in (5, 6):
        return [tree(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = [
        "name",
        "price",
        "quantity",
        "sum",
        "vat",
        "type",
        "payment_method",
        "payment_object",
        "measure",
        "mark_code",
        "sno",
        "correction_info",
        "base_date",
        "client",
        "company",
        "items",
        "payments",
        "total",
        "cashier",
        junk(rng, 5),
    ]
    return {rng.choice(keys): tree(rng, depth + 1) for _ in range(rng.randrange(5))}


def json_check(rng: random.Random, secret: str) -> dict[str, Any]:
    """Random structures in every field the mappings read; ``payments`` is never a usable
    list of payments, so nothing can be published."""
    check = {
        key: tree(rng)
        for key in ("type", "calculated", "items", "client_email", "total_sum", "measure_code")
    }
    if rng.random() < 0.5:
        check["type"] = rng.choice(["sell", "creditreturn", "prepayment"])
        check["items"] = [tree(rng) or {"name": "x"} for _ in range(rng.randrange(1, 4))]
    check["uuid"] = f"check|fuzz-json|{rng.randrange(10**9)}"
    check["payments"] = rng.choice([None, "x", [], [{"type": tree(rng), "sum": "abc"}]])
    check["cashbox_params"] = {"RELAY": {"KASSA": "k1", "SECRET": secret}}
    return check


def atol_tree(rng: random.Random) -> dict[str, Any]:
    receipt = {key: tree(rng) for key in ("client", "company", "items", "total", "cashier")}
    if rng.random() < 0.5:
        receipt["items"] = [tree(rng) or {} for _ in range(rng.randrange(1, 3))]
    receipt["payments"] = rng.choice([None, "x", [], [{"type": "1", "sum": 1}]])
    receipt["correction_info"] = tree(rng)
    section = rng.choice(["receipt", "correction"])
    return {
        "external_id": f"fz-{rng.randrange(10**9)}",
        section: receipt,
        "service": {"callback_url": tree(rng)},
    }


def request_for(
    rng: random.Random, secret: str, token: str
) -> tuple[str, str, bytes, dict[str, str]]:
    kind = rng.randrange(16)
    form = {"content-type": FORM}
    if kind == 0:  # random bytes as a form
        return "POST", "/b24/fuzz/print", rng.randbytes(rng.randrange(0, 3000)), form
    if kind == 1:  # random key/value text
        return (
            "POST",
            "/b24/fuzz/print",
            junk(rng, rng.randrange(0, 2000)).encode("utf-8", "surrogatepass"),
            form,
        )
    if kind == 2:  # deep nesting
        key = "a" + "[x]" * rng.randrange(5, 400)
        return "POST", "/b24/fuzz/print", f"{key}=1".encode(), form
    if kind == 3:  # many fields
        body = "&".join(f"f{i}=1" for i in range(rng.randrange(3000, 9000)))
        return "POST", "/b24/fuzz/print", body.encode(), form
    if kind == 4:  # a plausible check with a wrong secret or kassa
        check = broken_check(rng, secret)
        check["items"] = [{"name": "ok", "price": "1.00", "quantity": "1", "sum": "1.00"}]
        check["payments"] = [{"type": "cash", "sum": "1.00"}]
        check["type"] = "sell"
        check["cashbox_params"]["RELAY"] = rng.choice(
            [
                {"KASSA": "k1", "SECRET": secret[:-1] + "x"},
                {"KASSA": "k2", "SECRET": secret},
                {"KASSA": "../k1", "SECRET": secret},
                {"SECRET": secret},
                {},
            ]
        )
        return "POST", "/b24/fuzz/print", build_query(check).encode(), form
    if kind == 5:  # right cashbox, broken check
        return "POST", "/b24/fuzz/print", build_query(broken_check(rng, secret)).encode(), form
    if kind == 6:  # CHECK_URL garbage
        uuid = rng.choice([junk(rng, 40), "k1:" + "0" * 32, "k1:zz", "", ":" * 3])
        return "POST", "/b24/fuzz/check", build_query({"uuid": uuid}).encode(), form
    if kind == 7:  # unknown tenants and paths
        path = rng.choice(
            [
                "/b24/NoSuch/print",
                "/b24/x/check",
                "/",
                "/admin",
                "/b24/fuzz",
                "/possystem/v5/",
                "/b24/fuzz/print/../../etc",
                "/%00",
            ]
        )
        return rng.choice(["GET", "POST", "PUT", "DELETE"]), path, b"", {}
    if kind == 8:  # JSON garbage to getToken
        body = rng.choice(
            [
                b"{",
                b"[]",
                b'{"login": 1}',
                rng.randbytes(50),
                json.dumps({"login": junk(rng, 10), "pass": junk(rng, 10)}).encode(),
            ]
        )
        return "POST", "/possystem/v5/getToken", body, {"content-type": "application/json"}
    if kind == 9:  # operations with bad tokens
        bad = "".join(rng.choice(string.ascii_letters + string.digits + ".-_") for _ in range(30))
        headers = {"Token": rng.choice(["", bad, token[:-2] + "xx", "a.b.c", "fuzz.1.x"])}
        body = json.dumps({"external_id": "e", "receipt": {}}).encode()
        return "POST", f"/possystem/v5/k1/{rng.choice(['sell', 'buy', 'x'])}", body, headers
    if kind == 10:  # a valid token, broken bodies
        body = rng.choice(
            [
                b"null",
                b'{"external_id": ""}',
                rng.randbytes(100),
                b'{"a":' * 50 + b"1" + b"}" * 50,
                json.dumps({"external_id": "e" * 300}).encode(),
                json.dumps(
                    {"external_id": "e1", "receipt": {"items": "x", "payments": []}}
                ).encode(),
                json.dumps(
                    {
                        "external_id": "e2",
                        "receipt": {"items": [{"name": 5}], "payments": [{"type": 0, "sum": 1}]},
                    }
                ).encode(),
            ]
        )
        return (
            "POST",
            "/possystem/v5/k1/sell",
            body,
            {"Token": token, "content-type": "application/json"},
        )
    if kind == 11:  # report of unknown documents, other groups
        uuid = rng.choice(["0" * 36, junk(rng, 20), "00000000-0000-0000-0000-000000000000"])
        group = rng.choice(["k1", "k2", "..", "K1"])
        return "GET", f"/possystem/v5/{group}/report/{uuid}", b"", {"Token": token}
    if kind == 12:  # too large
        return "POST", "/b24/fuzz/print", b"a=" + b"x" * (300 * 1024), form
    if kind == 13:
        return (
            "POST",
            "/b24/fuzz/print",
            b'{"cashbox_params": 1}',
            {"content-type": "application/json"},
        )
    json_headers = {"content-type": "application/json"}
    if kind == 14:  # random structures through the Bitrix24 mapping (JSON body)
        return "POST", "/b24/fuzz/print", json.dumps(json_check(rng, secret)).encode(), json_headers
    operation = rng.choice(["sell", "buy_refund", "sell_correction", "buy_refund_correction"])
    return (
        "POST",
        f"/possystem/v5/k1/{operation}",
        json.dumps(atol_tree(rng)).encode(),
        {"Token": token, **json_headers},
    )


async def fuzz(base: str, secret: str, token: str, context: Any) -> dict[int, int]:
    rng = random.Random(SEED)
    requests = [request_for(rng, secret, token) for _ in range(REQUESTS)]
    statuses: dict[int, int] = {}
    queue: asyncio.Queue[tuple[str, str, bytes, dict[str, str]]] = asyncio.Queue()
    for request in requests:
        queue.put_nowait(request)
    connector = aiohttp.TCPConnector(ssl=context, limit=CONCURRENCY)

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            method, path, body, headers = queue.get_nowait()
            async with session.request(method, base + path, data=body, headers=headers) as answer:
                text = await answer.read()
                statuses[answer.status] = statuses.get(answer.status, 0) + 1
                assert answer.status < 500, (method, path, answer.status, text[:200])
                json.loads(text)  # every answer is JSON

    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
    return statuses


def test_ten_thousand_malformed_requests_are_answered_and_publish_nothing(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    nats_cluster.ensure_all_up()
    secret = register(nats_cluster, tmp_path, "fuzz", "k1", "--vat", "1=none", atol_login="fuzzer")
    (relay,) = start_relays(nats_cluster, tmp_path, 1, "--rate", "100000", "--burst", "100000")
    try:
        import httpx

        context = nats_cluster.pki.client_context()
        token = httpx.post(
            relay.url + "/possystem/v5/getToken",
            verify=context,
            json={"login": "fuzzer", "pass": "fuzzer-password"},
        ).json()["token"]
        statuses = asyncio.run(fuzz(relay.url, secret, token, context))
        assert sum(statuses.values()) == REQUESTS
        assert relay.alive()
        health = httpx.get(relay.url + "/healthz", verify=context).json()
        assert health["counters"].get("internal_error", 0) == 0
        assert health["counters"].get("published", 0) == 0
        counters = health["counters"]
        assert counters["rejected"] and counters["unauthenticated"] and counters["malformed"]
        assert statuses.get(413) and statuses.get(404) and statuses.get(401)

        async def queue_untouched() -> None:
            bus = Bus(
                BusOptions(
                    tuple(nats_cluster.urls), "relay", RELAY_PASSWORD, str(nats_cluster.pki.ca)
                )
            )
            await bus.start()
            try:
                info = await bus.js.consumer_info(JOBS_STREAM, durable_name("fuzz", "k1"))
                assert info.num_pending == 0 and info.num_ack_pending == 0
                assert info.delivered.consumer_seq == 0  # nothing was ever delivered
            finally:
                await bus.close()

        asyncio.run(queue_untouched())
    finally:
        relay.stop()


async def test_per_tenant_rate_limit_answers_429_with_retry_after(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from kassa_relay.service import Limits, Relay
    from kassa_relay.web import build_app

    bus = Bus(
        BusOptions(tuple(nats_cluster.urls), "relay", RELAY_PASSWORD, str(nats_cluster.pki.ca))
    )
    await bus.start()
    relay = Relay(bus, Limits(rate=0.5, burst=5))
    try:
        async with TestClient(TestServer(build_app(relay, callbacks=False))) as client:
            answers = [
                await client.post("/b24/busy/print", data="uuid=x", headers={"content-type": FORM})
                for _ in range(12)
            ]
            limited = [a for a in answers if a.status == 429]
            assert len(limited) == 7
            assert limited[0].headers["Retry-After"]
            assert "too many requests" in (await limited[0].json())["ERRORS"][0]
            other = await client.post(
                "/b24/calm/print", data="uuid=x", headers={"content-type": FORM}
            )
            assert other.status == 200  # another tenant is not slowed down
    finally:
        await bus.close()
