"""`make bench`: every benchmark in turn; each prints its own figures and targets."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("bench.throughput", "bench.startup", "bench.bitrix_latency", "bench.app_load")
BENCHMARKS += ("bench.b24bot",)
BENCHMARKS += ("bench.lan_api",)
BENCHMARKS += ("bench.maxbot",)
BENCHMARKS += ("bench.delivery",)
BENCHMARKS += ("bench.relay",)
BENCHMARKS += ("bench.chat_bots",)
BENCHMARKS += ("bench.automation",)


def main() -> None:
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        importlib.import_module(name).main([])
    sys.stdout.flush()


if __name__ == "__main__":
    main()
