"""``kassa-relay`` console script (filled in by the relay work)."""

from __future__ import annotations


def main(argv: list[str] | None = None) -> int:
    raise SystemExit("kassa-relay: not built yet")
