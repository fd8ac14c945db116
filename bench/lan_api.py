"""The LAN API (Atol Web Requests compatible) on the real daemon, over loopback.

Set-up: the daemon runs as a real subprocess (``python -m kassa_appliance run``) on the
simulated register with the LAN API on (HTTP Basic); this process is the 1C / web-shop
side, talking HTTP with httpx.

1. **latency** (``--jobs``): one receipt at a time on an idle queue, ``POST
   /api/v2/requests`` → fiscalisation start, taken as the job's journal ``created_at`` (the
   moment the LAN API stored the job and woke the engine; with an idle queue the receipt
   starts right after), and POST → ``ready`` seen by polling.
2. **polling while printing** (``--burst``, ``--pollers`` for ``--poll-seconds``): a burst of
   receipts is queued with a print delay per document (a real 30F prints one in about
   0.5-1 s; here ``--print-delay``), and the pollers ask ``GET /api/v2/requests/{uuid}``
   and ``getRequestsQueueStatus`` as fast as they can: requests/s answered, their p99, and
   the receipts printed meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.throughput import percentile, sell_task
from kassa_appliance.appliance.config import Config, RegisterConfig, save_config
from kassa_appliance.appliance.daemon import daemon_command, journal_path, read_status_file
from kassa_appliance.channels.lan.settings import LanConfig
from kassa_appliance.fiscal.journal import Journal
from kassa_appliance.registers.factory import simulator_state_dir
from kassa_appliance.registers.simulator_faults import Fault, clear_faults, set_fault

AUTH = ("bench", "bench-password-1")
TARGET_P50_MS = 20.0
TARGET_P99_MS = 100.0
TARGET_POLLS_PER_SECOND = 300.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _start(data_dir: Path, port: int) -> subprocess.Popen[bytes]:
    lan = LanConfig.model_validate(
        {
            "enabled": True,
            "port": port,
            "bind": "127.0.0.1",
            "username": AUTH[0],
            "password": AUTH[1],
        }
    )
    save_config(data_dir, Config(register=RegisterConfig(driver="simulator"), lan=lan))
    process = subprocess.Popen(
        daemon_command(data_dir, "warning"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    while not ((read_status_file(data_dir) or {}).get("lan") or {}).get("listening"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the daemon's LAN API did not come up")
        time.sleep(0.05)
    return process


async def _ready(client: httpx.AsyncClient, uuid: str) -> None:
    while True:
        entry = (await client.get(f"/api/v2/requests/{uuid}")).json()["results"][0]
        if entry["status"] == "ready":
            return
        if entry["status"] not in ("wait", "inProgress"):
            raise SystemExit(f"{uuid}: {entry}")
        await asyncio.sleep(0.002)


async def latency(client: httpx.AsyncClient, data_dir: Path, jobs: int) -> dict[str, float]:
    journal = Journal(journal_path(data_dir))
    starts: list[float] = []
    ends: list[float] = []
    try:
        for number in range(jobs):
            uuid = f"lat-{number}"
            sent = time.time()
            answer = await client.post(
                "/api/v2/requests", json={"uuid": uuid, "request": sell_task(number)}
            )
            assert answer.status_code == 201, answer.text
            await _ready(client, uuid)
            ends.append((time.time() - sent) * 1000)
            job = journal.get(f"lan:{uuid}")
            assert job is not None
            starts.append((job.created_at - sent) * 1000)
    finally:
        journal.close()
    return {
        "start_p50": percentile(starts, 0.5),
        "start_p99": percentile(starts, 0.99),
        "ready_p50": percentile(ends, 0.5),
        "ready_p99": percentile(ends, 0.99),
    }


async def polling(
    client: httpx.AsyncClient, data_dir: Path, burst: int, pollers: int, seconds: float
) -> dict[str, Any]:
    set_fault(simulator_state_dir(data_dir), "print_delay", Fault(seconds=0.02))
    uuids = [f"burst-{n}" for n in range(burst)]
    for number, uuid in enumerate(uuids):
        await client.post("/api/v2/requests", json={"uuid": uuid, "request": sell_task(number)})
    timings: list[float] = []
    count = 0
    stop_at = time.monotonic() + seconds

    async def poll(index: int) -> None:
        nonlocal count
        position = index
        while time.monotonic() < stop_at:
            started = time.monotonic()
            if position % 5 == 0:
                response = await client.get("/api/v2/getRequestsQueueStatus")
            else:
                response = await client.get(f"/api/v2/requests/{uuids[position % burst]}")
            assert response.status_code == 200
            timings.append((time.monotonic() - started) * 1000)
            count += 1
            position += pollers

    status_before = (await client.get("/api/v2/getRequestsQueueStatus")).json()
    started = time.monotonic()
    await asyncio.gather(*(poll(index) for index in range(pollers)))
    elapsed = time.monotonic() - started
    status_after = (await client.get("/api/v2/getRequestsQueueStatus")).json()
    clear_faults(simulator_state_dir(data_dir))
    return {
        "polls_per_second": count / elapsed,
        "poll_p50": percentile(timings, 0.5),
        "poll_p99": percentile(timings, 0.99),
        "printed": status_after["ready"] - status_before["ready"],
        "elapsed": elapsed,
    }


async def run(args: argparse.Namespace, data_dir: Path, port: int) -> None:
    limits = httpx.Limits(max_connections=args.pollers + 2)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", auth=AUTH, timeout=30, limits=limits
    ) as client:
        figures = await latency(client, data_dir, args.jobs)
        print(
            f"LAN request -> fiscalisation start: p50 {figures['start_p50']:.1f} ms, "
            f"p99 {figures['start_p99']:.1f} ms (targets {TARGET_P50_MS:g} / {TARGET_P99_MS:g} ms);"
            f" -> ready (polled): p50 {figures['ready_p50']:.1f} ms, "
            f"p99 {figures['ready_p99']:.1f} ms  [{args.jobs} receipts, idle queue]"
        )
        polled = await polling(client, data_dir, args.burst, args.pollers, args.poll_seconds)
        print(
            f"status polling while the queue prints: {polled['polls_per_second']:.0f} requests/s "
            f"(target {TARGET_POLLS_PER_SECOND:g}), p50 {polled['poll_p50']:.1f} ms, "
            f"p99 {polled['poll_p99']:.1f} ms; {polled['printed']} receipts printed in "
            f"{polled['elapsed']:.1f} s meanwhile  [{args.pollers} pollers, burst of {args.burst}]"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--burst", type=int, default=300)
    parser.add_argument("--pollers", type=int, default=16)
    parser.add_argument("--poll-seconds", type=float, default=8.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="kassa-lan-bench-") as tmp:
        data_dir = Path(tmp) / "data"
        port = _free_port()
        process = _start(data_dir, port)
        try:
            asyncio.run(run(args, data_dir, port))
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)


if __name__ == "__main__":
    main()
