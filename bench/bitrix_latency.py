"""The Bitrix24 path end to end: doorbell latency, jobs/s and daemon memory.

Set-up (all loopback): the portal emulator (REST + push server, push buffering delay 0)
runs in this process, the daemon runs as a real subprocess (``python -m kassa_appliance
run``) on the simulated register with print delay 0, and this process is the producer: for
each job it stores a KASSAJOB item (``entity.item.add``) and then rings the doorbell
(``pull.application.event.add``).

Two phases, on one daemon:

1. **paced** (``--jobs``): one job in flight — the next job is published once the previous
   one reads ``done`` in Bitrix24, so every doorbell finds the daemon idle. Latency is
   measured from the doorbell publish (taken just before the request goes out) to
   **fiscalisation start**. The journal does not keep the time of the ``fiscalizing``
   transition (``updated_at`` is overwritten by later transitions), so we use the job's
   ``created_at``: the moment the daemon recorded the fetched job in its journal and woke
   the engine. With an empty queue the engine starts the receipt right after that commit,
   so ``created_at`` is fiscalisation start minus the engine's wake-up (sub-millisecond);
   it is **not** that under load, which is why the latency phase is paced. Jobs the
   daemon's own reconciliation picked up before their doorbell (possible if its 60 s sweep
   falls between the item add and the doorbell) are counted and left out.
2. **burst** (``--burst-jobs``, default = ``--jobs``): every job published back to back
   as fast as the producer can; jobs/s = jobs / (first publish → last job ``done`` in
   Bitrix24), i.e. the whole loop including write-back.

Daemon RSS (``VmRSS`` from ``/proc/<pid>/status``) is read after each phase.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench.throughput import percentile, sell_task
from kassa_appliance.appliance.daemon import journal_path
from kassa_appliance.bitrix.jobs import STATE_DONE, STATE_FAILED
from kassa_appliance.fiscal.journal import JobState, Journal
from kassa_appliance.testbeds.demo_stack import ApplianceStack, StackSettings, read_rss_kib

DEFAULT_JOBS = 1000
TARGET_P50_MS = 20.0
TARGET_P99_MS = 100.0
TARGET_RSS_MIB = 60.0
JOB_TIMEOUT_SECONDS = 30.0
DONE_POLL_SECONDS = 0.002
"""Pacing only (not part of the latency); coarse so it does not steal the emulator's CPU."""
BURST_POLL_SECONDS = 0.005


class BenchError(Exception):
    pass


@dataclass
class Run:
    paced: dict[str, float] = field(default_factory=dict)
    """job id → doorbell publish time (time.time())."""
    paced_seconds: float = 0.0
    burst: dict[str, float] = field(default_factory=dict)
    burst_seconds: float = 0.0
    burst_publish_seconds: float = 0.0
    rss_after_paced_kib: int | None = None
    rss_after_burst_kib: int | None = None
    cpu: dict[str, tuple[float, float]] = field(default_factory=dict)
    """phase → (daemon CPU s, this process's CPU s: emulator + producer)."""


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (Linux /proc), 0.0 when unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def wait_done(stack: ApplianceStack, item_id: int, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        item = stack.stored_item(item_id)
        state = None if item is None else item.properties.get("STATE")
        if state == STATE_DONE:
            return
        if state == STATE_FAILED:
            raise BenchError(f"KASSAJOB item {item_id} failed: {item and item.properties}")
        if loop.time() >= deadline:
            raise BenchError(f"KASSAJOB item {item_id} not done within {timeout:g} s")
        stack.check_daemon()
        await asyncio.sleep(DONE_POLL_SECONDS)


async def paced_phase(stack: ApplianceStack, jobs: int, run: Run) -> None:
    started = time.perf_counter()
    for number in range(jobs):
        job_id = f"paced-{number:06d}-{uuid.uuid4().hex[:6]}"
        item_id = await stack.publish(job_id, sell_task(number), ring=False)
        run.paced[job_id] = time.time()
        await stack.ring(job_id)
        await wait_done(stack, item_id, JOB_TIMEOUT_SECONDS)
    run.paced_seconds = time.perf_counter() - started


async def burst_phase(stack: ApplianceStack, jobs: int, run: Run) -> None:
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    pending: set[int] = set()
    for number in range(jobs):
        job_id = f"burst-{number:06d}-{uuid.uuid4().hex[:6]}"
        item_id = await stack.publish(job_id, sell_task(number), ring=False)
        run.burst[job_id] = time.time()
        await stack.ring(job_id)
        pending.add(item_id)
    run.burst_publish_seconds = time.perf_counter() - started
    deadline = loop.time() + JOB_TIMEOUT_SECONDS + jobs * 0.1
    while pending:
        for item_id in list(pending):
            item = stack.stored_item(item_id)
            state = None if item is None else item.properties.get("STATE")
            if state == STATE_DONE:
                pending.discard(item_id)
            elif state == STATE_FAILED:
                raise BenchError(f"KASSAJOB item {item_id} failed")
        if loop.time() >= deadline:
            raise BenchError(f"{len(pending)} burst job(s) not done in time")
        stack.check_daemon()
        await asyncio.sleep(BURST_POLL_SECONDS)
    run.burst_seconds = time.perf_counter() - started


async def measure(root: Path, jobs: int, burst_jobs: int) -> Run:
    run = Run()
    settings = StackSettings(
        root=root, print_delay=0.0, push_buffer_delay=0.0, kassa_id="bench-kassa"
    )
    async with ApplianceStack(settings) as stack:
        assert stack.daemon is not None
        pid = stack.daemon.pid
        daemon_cpu, own_cpu = process_cpu_seconds(pid), time.process_time()
        await paced_phase(stack, jobs, run)
        run.rss_after_paced_kib = read_rss_kib(pid)
        run.cpu["paced"] = (process_cpu_seconds(pid) - daemon_cpu, time.process_time() - own_cpu)
        if burst_jobs:
            daemon_cpu, own_cpu = process_cpu_seconds(pid), time.process_time()
            await burst_phase(stack, burst_jobs, run)
            run.rss_after_burst_kib = read_rss_kib(pid)
            run.cpu["burst"] = (
                process_cpu_seconds(pid) - daemon_cpu,
                time.process_time() - own_cpu,
            )
        status = await stack.stop_daemon()
        if status != 0:
            raise BenchError(f"the daemon exited with status {status}\n{stack.log_tail()}")
    return run


def receipt_latencies_ms(
    published: dict[str, float], journal_file: Path
) -> tuple[list[float], int]:
    """Doorbell publish → journal ``created_at`` per job, and how many came in early."""
    with Journal(journal_file) as journal:
        received = {job.id: job for job in journal.all_jobs() if job.id in published}
    missing = set(published) - set(received)
    if missing:
        raise BenchError(f"{len(missing)} job(s) never reached the journal")
    not_fiscalised = [j.id for j in received.values() if j.state is not JobState.REPORTED]
    if not_fiscalised:
        raise BenchError(f"{len(not_fiscalised)} job(s) not fiscalised and reported")
    latencies: list[float] = []
    early = 0
    for job_id, rang in published.items():  # in publish order
        delta = received[job_id].created_at - rang
        if delta < 0:
            early += 1
        else:
            latencies.append(delta * 1000)
    return latencies, early


def _mib(kib: int | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f} MiB"


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def _print_cpu(run: Run, phase: str, seconds: float) -> None:
    if phase not in run.cpu:
        return
    daemon, own = run.cpu[phase]
    print(
        f"  CPU: daemon {daemon:.1f} s ({daemon / seconds:.0%} of a core), emulator + producer "
        f"{own:.1f} s ({own / seconds:.0%} of a core)"
    )


def report(run: Run, journal_file: Path) -> None:
    latencies, early = receipt_latencies_ms(run.paced, journal_file)
    if not latencies:
        raise BenchError("no paced job was taken in by its doorbell")
    p50 = statistics.median(latencies)
    p99 = percentile(latencies, 0.99)
    jobs = len(run.paced)
    print(
        f"doorbell → fiscalisation start (journal receipt, queue idle), {len(latencies)} jobs: "
        f"p50 {p50:.1f} ms (target ≤ {TARGET_P50_MS:g}: {_verdict(p50 <= TARGET_P50_MS)}), "
        f"p99 {p99:.1f} ms (target ≤ {TARGET_P99_MS:g}: {_verdict(p99 <= TARGET_P99_MS)}), "
        f"max {max(latencies):.1f} ms"
        + (f"; {early} picked up by reconciliation before their doorbell" if early else "")
    )
    tenth = max(1, len(latencies) // 10)
    print(
        f"  p50 of the first {tenth} jobs {statistics.median(latencies[:tenth]):.1f} ms, "
        f"of the last {tenth} {statistics.median(latencies[-tenth:]):.1f} ms (the emulator "
        "scans all items for each entity.item.get, so its cost grows with the item count)"
    )
    print(
        f"paced, one job in flight: {jobs} jobs in {run.paced_seconds:.2f} s = "
        f"{jobs / run.paced_seconds:.0f} jobs/s (publish → done in Bitrix24)"
    )
    _print_cpu(run, "paced", run.paced_seconds)
    rss_ok = run.rss_after_paced_kib is not None and run.rss_after_paced_kib / 1024 <= 60
    print(
        f"daemon RSS after {jobs} jobs: {_mib(run.rss_after_paced_kib)} "
        f"(target ≤ {TARGET_RSS_MIB:g} MiB: {_verdict(rss_ok)})"
    )
    if run.burst:
        burst = len(run.burst)
        print(
            f"burst, published back to back: {burst} jobs, first publish → last done in "
            f"Bitrix24 {run.burst_seconds:.2f} s = {burst / run.burst_seconds:.0f} jobs/s "
            f"(publishing alone took {run.burst_publish_seconds:.2f} s)"
        )
        _print_cpu(run, "burst", run.burst_seconds)
        under_load, _ = receipt_latencies_ms(run.burst, journal_file)
        if under_load:
            print(
                f"  doorbell → journal receipt under that load: "
                f"p50 {statistics.median(under_load):.1f} ms, "
                f"p99 {percentile(under_load, 0.99):.1f} ms (receipt, not fiscalisation start)"
            )
        print(f"  daemon RSS after {jobs + burst} jobs: {_mib(run.rss_after_burst_kib)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="paced jobs")
    parser.add_argument(
        "--burst-jobs", type=int, default=None, help="burst jobs (default: --jobs; 0 skips)"
    )
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs: expected at least 1")
    burst_jobs = args.jobs if args.burst_jobs is None else args.burst_jobs
    with tempfile.TemporaryDirectory(prefix="kassa-bench-bitrix-") as folder:
        root = Path(folder)
        try:
            run = asyncio.run(measure(root, args.jobs, burst_jobs))
            report(run, journal_path(root / "appliance"))
        except BenchError as error:
            raise SystemExit(f"bitrix latency benchmark failed: {error}") from None


if __name__ == "__main__":
    main()
