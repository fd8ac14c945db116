"""Throughput of the fiscal core: N jobs through journal + engine + simulator.

The register prints instantly (print delay 0) so what is measured is our own overhead:
journal commits (WAL, synchronous=FULL), the engine's bookkeeping and the simulator's
fsync'd state file, i.e. everything that makes a job durable. Per-job overhead is the
interval between consecutive job completions while the queue is saturated.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path

from kassa_appliance.fiscal.engine import Engine, EngineSettings
from kassa_appliance.fiscal.journal import JobState, Journal
from kassa_appliance.registers.simulator import SimulatorRegister

DEFAULT_JOBS = 5000
DEFAULT_RUNS = 3
TARGET_JOBS_PER_SECOND = 500
TARGET_P99_MS = 10.0
FINISH_POLL_SECONDS = 0.05


def sell_task(number: int) -> dict[str, object]:
    price = 100 + number % 900
    return {
        "type": "sell",
        "operator": {"name": "Бенчмарк", "vatin": "500100732259"},
        "items": [
            {
                "type": "position",
                "name": f"Товар {number}",
                "price": price,
                "quantity": 1,
                "amount": price,
                "tax": {"type": "none"},
                "paymentMethod": "fullPayment",
                "paymentObject": "commodity",
            }
        ],
        "payments": [{"type": "electronically", "sum": price}],
        "total": price,
    }


async def measure(root: Path, jobs: int) -> tuple[float, list[float]]:
    journal = Journal(root / "journal.sqlite3")
    journal.submit_many(
        [(f"bench-{number:06d}", sell_task(number)) for number in range(jobs)], source="bench"
    )
    engine = Engine(journal, SimulatorRegister(root / "simulator"), EngineSettings())
    started = time.perf_counter()
    worker = asyncio.create_task(engine.run())
    last = f"bench-{jobs - 1:06d}"
    while not (state := journal.state_of(last)) or not state.is_final:
        await asyncio.sleep(FINISH_POLL_SECONDS)  # a waiter woken per job would cost it time
    elapsed = time.perf_counter() - started
    await engine.stop()
    await worker
    finished = sorted(
        job.updated_at for job in journal.all_jobs() if job.state is JobState.FISCALIZED
    )
    journal.close()
    if len(finished) != jobs:
        raise SystemExit(f"only {len(finished)} of {jobs} jobs were fiscalised")
    intervals_ms = [(b - a) * 1000 for a, b in itertools.pairwise(finished)]
    return elapsed, intervals_ms


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def fdatasync_ms(folder: Path, samples: int = 200) -> float:
    """Median time of one 4 KiB overwrite + fdatasync here: the unit the figures rest on."""
    path = folder / "fdatasync-probe"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        block = b"\0" * 4096
        os.pwrite(fd, block, 0)
        os.fsync(fd)
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            os.pwrite(fd, block, 0)
            os.fdatasync(fd)
            times.append((time.perf_counter() - started) * 1000)
    finally:
        os.close(fd)
        path.unlink()
    return statistics.median(times)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS)
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="runs to take the median of")
    args = parser.parse_args(argv)
    rates = []
    for run in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory(prefix="kassa-bench-") as folder:
            disk = fdatasync_ms(Path(folder))
            elapsed, intervals = asyncio.run(measure(Path(folder), args.jobs))
        rate = args.jobs / elapsed
        rates.append(rate)
        print(
            f"run {run}: {args.jobs} jobs in {elapsed:.2f} s = {rate:.0f} jobs/s; per-job "
            f"overhead p50 {statistics.median(intervals):.2f} ms, "
            f"p99 {percentile(intervals, 0.99):.2f} ms (target p99 ≤ {TARGET_P99_MS} ms); "
            f"fdatasync here {disk:.2f} ms"
        )
    print(
        f"fiscal core throughput: median {statistics.median(rates):.0f} jobs/s over "
        f"{args.runs} runs (target ≥ {TARGET_JOBS_PER_SECOND})"
    )


if __name__ == "__main__":
    main()
