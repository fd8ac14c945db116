"""The cloud relay on a real 3-node NATS cluster (loopback, JetStream, replicas 3, TLS):

* PRINT_URL latency p50/p99 with the publish acknowledged by the stream (one client, one
  request at a time, one relay instance);
* checks/s one relay instance sustains, and two (the client spreads the load over both);
* end to end: PRINT_URL sent → the check in the appliance's journal with the register idle
  (the engine starts fiscalising it at once; the job's ``created_at`` is stamped by the
  daemon when it commits the job, so the figure is exact on one host's clock).

All processes share this machine's cores with the load generator: the throughput figures
are a floor for a relay on its own host.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from kassa_appliance.bitrix.phpquery import build_query

DEFAULT_LATENCY_REQUESTS = 300
DEFAULT_LOAD_SECONDS = 6.0
DEFAULT_CONCURRENCY = 32
DEFAULT_E2E_CHECKS = 30
TARGET_P99_MS = 50.0
FORM = {"content-type": "application/x-www-form-urlencoded"}


def check_body(number: int, secret: str, prefix: str) -> bytes:
    check = {
        "type": "sell",
        "uuid": f"check|{prefix}.bench|{number}",
        "calculated": "income",
        "total_sum": "10.00",
        "items": [
            {
                "name": "Товар",
                "price": "10.00",
                "quantity": "1",
                "sum": "10.00",
                "vat": "1",
                "payment_object": "commodity",
            }
        ],
        "payments": [{"type": "cashless", "sum": "10.00"}],
        "cashbox_params": {"RELAY": {"KASSA": "k1", "SECRET": secret}},
    }
    return build_query(check).encode()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def post(session: aiohttp.ClientSession, url: str, body: bytes) -> None:
    async with session.post(url, data=body, headers=FORM) as answer:
        data: dict[str, Any] = await answer.json()
        if "UUID" not in data:
            raise SystemExit(f"relay refused a benchmark check: {data}")


async def latency(url: str, secret: str, requests: int, context: Any) -> list[float]:
    times = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        for number in range(requests):
            body = check_body(number, secret, "latency")
            started = time.perf_counter()
            await post(session, url, body)
            times.append((time.perf_counter() - started) * 1000)
    return times


async def load(
    urls: list[str], secret: str, seconds: float, concurrency: int, context: Any, prefix: str
) -> float:
    counter = iter(range(10**9))
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker(session: aiohttp.ClientSession, index: int) -> None:
        nonlocal done
        url = urls[index % len(urls)]
        while time.perf_counter() < deadline:
            await post(session, url, check_body(next(counter), secret, prefix))
            done += 1

    connector = aiohttp.TCPConnector(ssl=context, limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session, i) for i in range(concurrency)))
        return done / (time.perf_counter() - started)


async def end_to_end(
    url: str, secret: str, checks: int, context: Any, data_dir: Path
) -> list[float]:
    from kassa_appliance.appliance.daemon import journal_path
    from kassa_appliance.fiscal.journal import Journal

    times = []
    journal: Journal | None = None
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=context)) as session:
        for number in range(checks):
            body = check_body(number, secret, "e2e")
            job_id = f"relay:check|e2e.bench|{number}"  # the journal scopes relay checks
            sent = time.time()
            await post(session, url, body)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if journal is None and journal_path(data_dir).exists():
                    journal = Journal(journal_path(data_dir))
                job = journal.get(job_id) if journal is not None else None
                if job is not None:
                    times.append((job.created_at - sent) * 1000)
                    break
                await asyncio.sleep(0.002)
            else:
                raise SystemExit("a check never reached the appliance")
            while journal is not None and not journal.get(job_id).state.is_final:  # type: ignore[union-attr]
                await asyncio.sleep(0.01)  # the register is idle again before the next one
    if journal is not None:
        journal.close()
    return times


def main(argv: list[str] | None = None) -> None:
    from relay_cluster import NatsCluster, RelayDaemon, free_port, make_pki, register, start_relays

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=DEFAULT_LATENCY_REQUESTS)
    parser.add_argument("--seconds", type=float, default=DEFAULT_LOAD_SECONDS)
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--checks", type=int, default=DEFAULT_E2E_CHECKS)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kassa-relay-bench-") as folder:
        root = Path(folder)
        pki = make_pki(root / "pki")
        cluster = NatsCluster(
            root,
            pki,
            [free_port() for _ in range(3)],
            [free_port() for _ in range(3)],
            [None, None, None],
        )
        relays = []
        daemon = None
        try:
            for index in range(3):
                cluster.start(index)
            cluster.wait_ready()
            secret = register(cluster, root, "shop-a", "k1", "--vat", "1=none")
            e2e_secret = register(cluster, root, "fuzz", "k1", "--vat", "1=none")
            relays = start_relays(cluster, root, 2, "--rate", "1000000", "--burst", "1000000")
            context = pki.client_context()
            url = relays[0].url + "/b24/shop-a/print"
            times = asyncio.run(latency(url, secret, args.requests, context))
            print(
                f"PRINT_URL latency, publish acked (R3): p50 {statistics.median(times):.1f} ms, "
                f"p99 {percentile(times, 0.99):.1f} ms over {len(times)} "
                f"(target p99 ≤ {TARGET_P99_MS:.0f} ms)"
            )
            one = asyncio.run(load([url], secret, args.seconds, args.concurrency, context, "one"))
            both = [relay.url + "/b24/shop-a/print" for relay in relays]
            two = asyncio.run(load(both, secret, args.seconds, args.concurrency, context, "two"))
            print(
                f"throughput: one relay {one:.0f} checks/s, two relays {two:.0f} checks/s "
                f"({two / one:.2f}×; {args.concurrency} concurrent clients on the same cores)"
            )
            data_dir = root / "appliance"
            data_dir.mkdir()
            daemon = RelayDaemon(data_dir, cluster, "fuzz", "k1")
            daemon.start()
            e2e = asyncio.run(
                end_to_end(
                    relays[0].url + "/b24/fuzz/print", e2e_secret, args.checks, context, data_dir
                )
            )
            print(
                f"end to end, PRINT_URL sent → job in the appliance's journal (fiscalisation "
                f"starts): p50 {statistics.median(e2e[1:]):.1f} ms, "
                f"max {max(e2e[1:]):.1f} ms over {len(e2e) - 1} (first, with connection "
                f"set-up: {e2e[0]:.0f} ms)"
            )
        finally:
            if daemon is not None:
                daemon.terminate()
            for relay in relays:
                relay.stop()
            cluster.stop()


if __name__ == "__main__":
    main()
