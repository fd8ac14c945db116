"""Start-up and idle cost of the daemon, measured the way systemd sees it.

* time from process start (just before ``exec``) to ``READY=1`` on a fake NOTIFY_SOCKET;
* idle resident memory (``VmRSS``, peak of the samples) and CPU share
  (``utime+stime`` from ``/proc/<pid>/stat`` over the idle window) with the watchdog on.

The daemon runs ``kassa-appliance run`` on the simulated register in a throw-away data dir.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from kassa_appliance.appliance.config import Config, RegisterConfig, save_config
from kassa_appliance.appliance.daemon import daemon_command

TARGET_READY_SECONDS = 1.5
TARGET_IDLE_RSS_MB = 50.0
TARGET_IDLE_CPU_PERCENT = 0.5
IDLE_WATCHDOG_USEC = 30_000_000
"""A realistic ``watchdog-timeout: 30s`` for the idle measurement (a ping every 15 s)."""
READY_TIMEOUT = 30.0


class Daemon:
    """One ``kassa-appliance run`` with its own abstract NOTIFY_SOCKET."""

    def __init__(self, data_dir: Path, watchdog_usec: int) -> None:
        save_config(data_dir, Config(register=RegisterConfig(driver="simulator")))
        address = f"kassa-bench-{uuid.uuid4().hex}"
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.bind("\0" + address)
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("NOTIFY_", "WATCHDOG_", "SNAP", "KASSA_"))
        }
        env.update(
            NOTIFY_SOCKET="@" + address,
            WATCHDOG_USEC=str(watchdog_usec),
            PYTHONWARNINGS="ignore",
        )
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            daemon_command(data_dir), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def wait_ready(self) -> float:
        """Seconds from start to READY=1."""
        deadline = self.started + READY_TIMEOUT
        while (remaining := deadline - time.monotonic()) > 0:
            self._socket.settimeout(remaining)
            try:
                message = self._socket.recv(4096).decode()
            except TimeoutError:
                break
            if "READY=1" in message.split("\n"):
                return time.monotonic() - self.started
        raise RuntimeError(f"no READY=1 within {READY_TIMEOUT} s (exit {self.process.poll()})")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._socket.close()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS in /proc/{pid}/status")


def cpu_seconds(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def measure_ready(runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="kassa-bench-") as tmp:
            daemon = Daemon(Path(tmp), watchdog_usec=IDLE_WATCHDOG_USEC)
            try:
                times.append(daemon.wait_ready())
            finally:
                daemon.stop()
    return times


def measure_idle(seconds: float, settle: float = 2.0) -> tuple[float, float]:
    """Peak RSS (MB) and CPU share (%) over ``seconds`` of idling after READY."""
    with tempfile.TemporaryDirectory(prefix="kassa-bench-") as tmp:
        daemon = Daemon(Path(tmp), watchdog_usec=IDLE_WATCHDOG_USEC)
        try:
            daemon.wait_ready()
            time.sleep(settle)
            pid = daemon.process.pid
            cpu_start, wall_start = cpu_seconds(pid), time.monotonic()
            peak = rss_mb(pid)
            deadline = wall_start + seconds
            while (remaining := deadline - time.monotonic()) > 0:
                time.sleep(min(1.0, remaining))
                peak = max(peak, rss_mb(pid))
            cpu = cpu_seconds(pid) - cpu_start
            wall = time.monotonic() - wall_start
        finally:
            daemon.stop()
    return peak, 100.0 * cpu / wall


def _verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.startup", description=__doc__)
    parser.add_argument("--runs", type=int, default=3, help="start-ups to time (default 3)")
    parser.add_argument(
        "--idle-seconds", type=float, default=60.0, help="idle window to measure (default 60)"
    )
    args = parser.parse_args(argv)

    ready = measure_ready(args.runs)
    worst = max(ready)
    print(
        f"start → READY=1: median {statistics.median(ready):.3f} s, max {worst:.3f} s "
        f"over {len(ready)} runs (target ≤ {TARGET_READY_SECONDS} s) "
        f"{_verdict(worst <= TARGET_READY_SECONDS)}"
    )
    rss, cpu = measure_idle(args.idle_seconds)
    print(
        f"idle RSS: {rss:.1f} MB peak (target ≤ {TARGET_IDLE_RSS_MB:g} MB) "
        f"{_verdict(rss <= TARGET_IDLE_RSS_MB)}"
    )
    print(
        f"idle CPU: {cpu:.2f} % over {args.idle_seconds:g} s (target ≤ "
        f"{TARGET_IDLE_CPU_PERCENT} %) {_verdict(cpu <= TARGET_IDLE_CPU_PERCENT)}"
    )


if __name__ == "__main__":
    main()
