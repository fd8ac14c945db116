"""The Bitrix24 path end to end, with the portal's real REST limit on (2 requests/s, burst
50, the emulator's ``standard`` profile): what a receipt costs in requests, how many
receipts per second fit in that, latency, daemon CPU and memory.

Set-up (all loopback): the portal emulator (REST + push server, push buffering delay 0)
runs in this process, the daemon runs as a real subprocess (``python -m kassa_appliance
run``) on the simulated register with print delay 0. This process is the Bitrix24 side:
it stores KASSAJOB items and rings doorbells *in-process* (the app's users call from their
own addresses, so their requests are not the daemon's budget and are not counted): every
REST request the emulator admits during a phase is the daemon's.

Phases, on one daemon:

1. **isolated** (``--jobs``): one job every ``PACE_SECONDS``, each published once the
   previous one reads ``done`` — the queue is idle at every doorbell. Latency is doorbell
   → fiscalisation start, taken as the job's journal ``created_at`` (recorded the moment
   the daemon took the item and woke the engine; with an idle queue the receipt starts
   right after). Requests per receipt = requests admitted / jobs.
2. **burst** (``--burst-jobs``): that many items stored, then their doorbells rung back
   to back; requests per receipt, 503s, receipts/s (first bell → last ``done``), daemon
   CPU per receipt.
3. **sustained** (``--stream-rate`` for ``--stream-seconds``): jobs arrive at a steady
   rate; receipts/s kept up with, requests/s spent (must stay within 2/s), 503s.
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
from typing import Any

from bench.throughput import percentile, sell_task
from kassa_appliance.appliance.daemon import journal_path
from kassa_appliance.bitrix.jobs import JOB_ENTITY, STATE_DONE, STATE_FAILED, STATE_NEW
from kassa_appliance.bitrix.protocol import dumps
from kassa_appliance.fiscal.journal import JobState, Journal
from kassa_appliance.testbeds.bitrix24.limits import DEFAULT_PROFILE_ENV
from kassa_appliance.testbeds.bitrix24.state import CASHIER_USER_ID
from kassa_appliance.testbeds.demo_stack import ApplianceStack, StackSettings, read_rss_kib

DEFAULT_JOBS = 40
PACE_SECONDS = 1.2
"""Between isolated jobs: 2 requests per 1.2 s stays within the daemon's 1.8/s budget."""
DEFAULT_BURST = 1000
DEFAULT_STREAM_RATE = 25.0
DEFAULT_STREAM_SECONDS = 40.0
TARGET_ISOLATED_REQUESTS = 2.0
TARGET_BURST_REQUESTS = 0.1
TARGET_RECEIPTS_PER_SECOND = 20.0
TARGET_REQUESTS_PER_SECOND = 2.0
TARGET_CPU_MS = 3.0
TARGET_P50_MS = 20.0
TARGET_P99_MS = 100.0
TARGET_RSS_MIB = 60.0
JOB_TIMEOUT_SECONDS = 30.0
POLL_SECONDS = 0.005


class BenchError(Exception):
    pass


@dataclass
class Phase:
    rung: dict[str, float] = field(default_factory=dict)
    """job id → doorbell time (time.time())."""
    seconds: float = 0.0
    requests: int = 0
    refused: int = 0
    method_calls: int = 0
    daemon_cpu: float = 0.0
    rss_kib: int | None = None


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (Linux /proc), 0.0 when unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Producer:
    """The Bitrix24 side in-process: ``entity.item.add`` through the emulator's REST
    handler (not over HTTP, so not in the daemon's rate-limit bucket) and the doorbell
    straight on the push server."""

    def __init__(self, stack: ApplianceStack) -> None:
        assert stack.emulator is not None and stack.push is not None
        self._stack = stack
        state = stack.emulator.state
        rotated = state.rotate(state.issue_refresh_token(CASHIER_USER_ID))
        assert rotated is not None
        self._token = rotated[0]

    async def store(self, job_id: str, number: int) -> int:
        assert self._stack.emulator is not None
        values = {"KASSA": self._stack.settings.kassa_id, "STATE": STATE_NEW}
        values |= {"TASK": dumps(sell_task(number)), "SOURCE": "bench", "REPLY": ""}
        status, body = await self._stack.emulator.api.handle(
            "entity.item.add",
            {"auth": self._token, "ENTITY": JOB_ENTITY, "NAME": job_id, "PROPERTY_VALUES": values},
        )
        if status != 200:
            raise BenchError(f"storing a job failed: HTTP {status} {body}")
        return int(body["result"])

    async def ring(self, job_id: str) -> None:
        stack = self._stack
        assert stack.push is not None and stack.emulator is not None
        await stack.push.publish_app_event(
            "kassa.job",
            {"job": job_id, "kassa": stack.settings.kassa_id},
            client_id=stack.emulator.state.client_id,
        )


class Counter:
    """The daemon's REST traffic as the emulator sees it, between two snapshots."""

    def __init__(self, stack: ApplianceStack) -> None:
        assert stack.emulator is not None and stack.daemon is not None
        self._stack = stack
        self._pid = stack.daemon.pid
        self._start = self._now()

    def _now(self) -> tuple[int, int, int, float]:
        emulator = self._stack.emulator
        assert emulator is not None
        calls = sum(n for method, n in emulator.api.calls.items() if method != "entity.item.add")
        stats = emulator.limits.stats
        return stats.admitted, stats.refused, calls, process_cpu_seconds(self._pid)

    def finish(self, phase: Phase, seconds: float) -> None:
        end = self._now()
        phase.requests = end[0] - self._start[0]
        phase.refused = end[1] - self._start[1]
        phase.method_calls = end[2] - self._start[2]
        phase.daemon_cpu = end[3] - self._start[3]
        phase.seconds = seconds
        phase.rss_kib = read_rss_kib(self._pid)


async def wait_done(stack: ApplianceStack, items: set[int], timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = set(items)
    while pending:
        for item_id in list(pending):
            item = stack.stored_item(item_id)
            state = None if item is None else item.properties.get("STATE")
            if state == STATE_DONE:
                pending.discard(item_id)
            elif state == STATE_FAILED:
                raise BenchError(f"KASSAJOB item {item_id} failed: {item and item.properties}")
        if pending and loop.time() >= deadline:
            raise BenchError(f"{len(pending)} job(s) not done within {timeout:g} s")
        stack.check_daemon()
        await asyncio.sleep(POLL_SECONDS)


async def isolated_phase(stack: ApplianceStack, producer: Producer, jobs: int) -> Phase:
    phase = Phase()
    counter = Counter(stack)
    started = time.perf_counter()
    for number in range(jobs):
        job_id = f"isolated-{number:06d}-{uuid.uuid4().hex[:6]}"
        item_id = await producer.store(job_id, number)
        phase.rung[job_id] = time.time()
        await producer.ring(job_id)
        await wait_done(stack, {item_id}, JOB_TIMEOUT_SECONDS)
        await asyncio.sleep(max(0.0, started + (number + 1) * PACE_SECONDS - time.perf_counter()))
    await asyncio.sleep(3.0)  # what follows the last job (a held-back mark would) counts too
    counter.finish(phase, time.perf_counter() - started)
    return phase


async def burst_phase(stack: ApplianceStack, producer: Producer, jobs: int) -> Phase:
    phase = Phase()
    names = [f"burst-{number:06d}-{uuid.uuid4().hex[:6]}" for number in range(jobs)]
    items = {await producer.store(job_id, number) for number, job_id in enumerate(names)}
    counter = Counter(stack)
    started = time.perf_counter()
    for job_id in names:
        phase.rung[job_id] = time.time()
        await producer.ring(job_id)
    await wait_done(stack, items, JOB_TIMEOUT_SECONDS + jobs * 0.05)
    seconds = time.perf_counter() - started
    await asyncio.sleep(3.0)
    counter.finish(phase, seconds)
    return phase


async def stream_phase(
    stack: ApplianceStack, producer: Producer, rate: float, seconds: float
) -> Phase:
    phase = Phase()
    counter = Counter(stack)
    started = time.perf_counter()
    items: set[int] = set()
    jobs = int(rate * seconds)
    for number in range(jobs):
        await asyncio.sleep(max(0.0, started + number / rate - time.perf_counter()))
        job_id = f"stream-{number:06d}-{uuid.uuid4().hex[:6]}"
        items.add(await producer.store(job_id, number))
        phase.rung[job_id] = time.time()
        await producer.ring(job_id)
    await wait_done(stack, items, JOB_TIMEOUT_SECONDS)
    counter.finish(phase, time.perf_counter() - started)
    return phase


def latencies_ms(rung: dict[str, float], journal_file: Path) -> list[float]:
    """Doorbell → journal ``created_at`` per job (reconciliation may take a job first)."""
    with Journal(journal_file) as journal:
        jobs = {job.id: job for job in journal.all_jobs() if job.id in rung}
    missing = set(rung) - set(jobs)
    if missing:
        raise BenchError(f"{len(missing)} job(s) never reached the journal")
    if any(job.state is not JobState.REPORTED for job in jobs.values()):
        raise BenchError("a job was not fiscalised and reported")
    return [max(0.0, jobs[job_id].created_at - at) * 1000 for job_id, at in rung.items()]


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def _cost_line(name: str, phase: Phase, target: float) -> str:
    jobs = len(phase.rung)
    per = phase.requests / jobs
    return (
        f"{name}: {jobs} receipts, {phase.requests} REST requests = {per:.3f} per receipt "
        f"(target ≤ {target:g}: {_verdict(per <= target)}), {phase.method_calls / jobs:.2f} "
        f"method calls per receipt, 503s {phase.refused} (target 0: "
        f"{_verdict(phase.refused == 0)})"
    )


def report(phases: dict[str, Phase], journal_file: Path) -> None:
    isolated = phases["isolated"]
    lat = latencies_ms(isolated.rung, journal_file)
    p50, p99 = statistics.median(lat), percentile(lat, 0.99)
    print(_cost_line("isolated", isolated, TARGET_ISOLATED_REQUESTS))
    print(
        f"  doorbell → fiscalisation start (queue idle), {len(lat)} jobs: p50 {p50:.1f} ms "
        f"(target ≤ {TARGET_P50_MS:g}: {_verdict(p50 <= TARGET_P50_MS)}), p99 {p99:.1f} ms "
        f"(target ≤ {TARGET_P99_MS:g}: {_verdict(p99 <= TARGET_P99_MS)}), max {max(lat):.1f} ms"
    )
    for name, target in (("burst", TARGET_BURST_REQUESTS), ("sustained", TARGET_BURST_REQUESTS)):
        phase = phases.get(name)
        if phase is None or not phase.rung:
            continue
        jobs = len(phase.rung)
        rate = jobs / phase.seconds
        print(_cost_line(name, phase, target))
        cpu_ms = phase.daemon_cpu / jobs * 1000
        under = latencies_ms(phase.rung, journal_file)
        per_second = phase.requests / phase.seconds
        within = (
            f" (target ≤ {TARGET_REQUESTS_PER_SECOND:g}: "
            f"{_verdict(per_second <= TARGET_REQUESTS_PER_SECOND)})"
            if name == "sustained"
            else " (from the burst allowance)"
        )
        print(
            f"  {rate:.1f} receipts/s (first bell → last done; target ≥ "
            f"{TARGET_RECEIPTS_PER_SECOND:g}: {_verdict(rate >= TARGET_RECEIPTS_PER_SECOND)}), "
            f"{per_second:.2f} requests/s{within}, daemon CPU {cpu_ms:.2f} ms per receipt "
            f"(target ≤ {TARGET_CPU_MS:g}: {_verdict(cpu_ms <= TARGET_CPU_MS)})"
        )
        print(
            f"  doorbell → journal receipt under that load: p50 {statistics.median(under):.0f}"
            f" ms, p99 {percentile(under, 0.99):.0f} ms"
        )
    rss = max((p.rss_kib or 0) for p in phases.values()) / 1024
    print(
        f"daemon RSS at most {rss:.1f} MiB (target ≤ {TARGET_RSS_MIB:g}: "
        f"{_verdict(0 < rss <= TARGET_RSS_MIB)})"
    )


async def measure(root: Path, args: argparse.Namespace) -> dict[str, Phase]:
    os.environ[DEFAULT_PROFILE_ENV] = "standard"  # the real limit: 2/s, burst 50
    settings = StackSettings(
        root=root, print_delay=0.0, push_buffer_delay=0.0, kassa_id="bench-kassa"
    )
    phases: dict[str, Phase] = {}
    async with ApplianceStack(settings) as stack:
        producer = Producer(stack)
        await asyncio.sleep(2.0)  # the daemon's start-up traffic is over
        phases["isolated"] = await isolated_phase(stack, producer, args.jobs)
        if args.burst_jobs:
            await asyncio.sleep(5.0)  # the bucket refills a little
            phases["burst"] = await burst_phase(stack, producer, args.burst_jobs)
        if args.stream_seconds > 0:
            phases["sustained"] = await stream_phase(
                stack, producer, args.stream_rate, args.stream_seconds
            )
        status = await stack.stop_daemon()
        if status != 0:
            raise BenchError(f"the daemon exited with status {status}\n{stack.log_tail()}")
    return phases


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="isolated jobs")
    parser.add_argument("--burst-jobs", type=int, default=DEFAULT_BURST, help="0 skips")
    parser.add_argument("--stream-rate", type=float, default=DEFAULT_STREAM_RATE)
    parser.add_argument("--stream-seconds", type=float, default=DEFAULT_STREAM_SECONDS)
    args: Any = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs: expected at least 1")
    with tempfile.TemporaryDirectory(prefix="kassa-bench-bitrix-") as folder:
        root = Path(folder)
        try:
            phases = asyncio.run(measure(root, args))
            report(phases, journal_path(root / "appliance"))
        except BenchError as error:
            raise SystemExit(f"bitrix latency benchmark failed: {error}") from None


if __name__ == "__main__":
    main()
