"""Reply delivery's own share: a job final in the journal → its outcome at the recipient.

In one process: a real journal file (WAL, ``synchronous=FULL``), the delivery worker woken
as the engine's listener would wake it, and a loopback aiohttp "recipient" with a sender
that posts to it (a stand-in for a chat API). Measured:

* single jobs, one at a time: latency from the journal's final transition to the message
  at the recipient (p50/p99) — the scan, the ``pending``/``sending``/``sent`` commits and
  one HTTP round trip;
* a burst of jobs finished at once: deliveries per second.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp import web

from bench.throughput import percentile, sell_task
from kassa_appliance.channels.delivery.protocol import Delivery
from kassa_appliance.channels.delivery.worker import DeliveryWorker
from kassa_appliance.fiscal.journal import JobState, Journal, Transition

DEFAULT_SINGLES = 100
DEFAULT_BURST = 500
TARGET_P50_MS = 50.0


class Recipient:
    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.arrived[str(body["job"])] = time.perf_counter()
        return web.json_response({"id": len(self.arrived)})

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/messages", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/messages"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class PostingSender:
    kind = "bench"

    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self._url = url
        self._session = session

    async def find_sent(self, delivery: Delivery) -> str | None:
        return None

    async def send(self, delivery: Delivery) -> str:
        body = {"job": delivery.job_id, "key": delivery.key, "qr": delivery.outcome.qr}
        async with self._session.post(self._url, json=body) as response:
            return str((await response.json())["id"])


def finish(journal: Journal, job_id: str, number: int) -> None:
    journal.submit(
        job_id, sell_task(number), source="bench", reply={"targets": [{"kind": "bench"}]}
    )
    journal.commit(
        [
            Transition(job_id, JobState.FISCALIZING, fd_before=number),
            Transition(job_id, JobState.FISCALIZED, result={"fiscalParams": {}}, qr=f"t={number}"),
        ]
    )


async def wait_for(predicate: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > deadline:
            raise TimeoutError("deliveries did not arrive")
        await asyncio.sleep(0.0005)


async def measure(singles: int, burst: int) -> tuple[list[float], float]:
    recipient = Recipient()
    await recipient.start()
    with tempfile.TemporaryDirectory(prefix="kassa-bench-delivery-") as folder:
        journal = Journal(Path(folder) / "journal.sqlite3")
        worker = DeliveryWorker(journal.path, kassa_id="bench", pause_after_send=None)
        async with aiohttp.ClientSession() as session:
            worker.register_sender(PostingSender(recipient.url, session))
            worker.start()
            try:
                latencies: list[float] = []
                for number in range(singles):
                    job_id = f"single-{number}"
                    started = time.perf_counter()
                    finish(journal, job_id, number)
                    worker.on_engine_change()
                    await wait_for(lambda: job_id in recipient.arrived)  # noqa: B023
                    latencies.append(recipient.arrived[job_id] - started)
                for number in range(burst):
                    finish(journal, f"burst-{number}", number)
                started = time.perf_counter()
                worker.on_engine_change()
                await wait_for(lambda: len(recipient.arrived) >= singles + burst)
                rate = burst / (time.perf_counter() - started)
            finally:
                await worker.stop()
                journal.close()
                await recipient.stop()
    return latencies, rate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--singles", type=int, default=DEFAULT_SINGLES)
    parser.add_argument("--burst", type=int, default=DEFAULT_BURST)
    args = parser.parse_args(argv)
    latencies, rate = asyncio.run(measure(args.singles, args.burst))
    p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
    print(f"reply delivery: job final → message at the recipient ({args.singles} jobs)")
    print(f"  latency p50 {p50:6.1f} ms   p99 {p99:6.1f} ms   (goal p50 ≤ {TARGET_P50_MS:g} ms)")
    print(f"  burst of {args.burst} final jobs: {rate:6.0f} deliveries/s")


if __name__ == "__main__":
    main()
