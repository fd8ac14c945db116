"""Fault injection for the emulated portal: dropped connections, 503 storms, 500s, latency.

``drop`` closes the connection before the request is handled; ``drop_answer`` handles it
(a token refresh rotates, a write is stored) and then closes the connection unanswered, so
the client cannot know that the server acted — the "lost answer" case.

Rules are consumed in the order they were added; each counts down and disappears when
spent (``count=None`` lasts until cleared). ``methods`` limits a rule to some REST methods
(``oauth/token`` names the token endpoint).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

FaultKind = Literal["drop", "drop_answer", "rate_limit", "error500", "latency"]
KINDS: tuple[str, ...] = ("drop", "drop_answer", "rate_limit", "error500", "latency")


@dataclass
class FaultRule:
    kind: FaultKind
    remaining: int | None
    methods: frozenset[str] | None
    seconds: float = 0.0

    def applies(self, method: str) -> bool:
        return self.methods is None or method in self.methods


@dataclass(frozen=True)
class FaultDecision:
    latency: float
    action: FaultKind | None
    """``drop``, ``drop_answer``, ``rate_limit``, ``error500`` or None (answer normally)."""


class Faults:
    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self.fired: dict[str, int] = {kind: 0 for kind in KINDS}

    def add(
        self,
        kind: FaultKind,
        *,
        count: int | None = 1,
        methods: list[str] | tuple[str, ...] | frozenset[str] | None = None,
        seconds: float = 0.0,
    ) -> None:
        if kind not in KINDS:
            raise ValueError(f"fault kind {kind!r} unknown; expected one of {', '.join(KINDS)}")
        if count is not None and count < 1:
            raise ValueError(f"fault count must be >= 1 or None (forever), got {count}")
        self._rules.append(
            FaultRule(kind, count, frozenset(methods) if methods else None, float(seconds))
        )

    def add_from_json(self, data: dict[str, Any]) -> None:
        kind = data.get("kind")
        if kind not in KINDS:
            raise ValueError(f"'kind' must be one of {', '.join(KINDS)}, got {kind!r}")
        count = data.get("count", 1)
        methods = data.get("methods")
        if methods is not None and not (
            isinstance(methods, list) and all(isinstance(m, str) for m in methods)
        ):
            raise ValueError("'methods' must be a list of method names")
        self.add(
            kind,
            count=None if count is None else int(count),
            methods=methods,
            seconds=float(data.get("seconds", 0.0)),
        )

    def clear(self) -> None:
        self._rules.clear()

    @property
    def active(self) -> bool:
        return bool(self._rules)

    def decide(self, method: str) -> FaultDecision:
        latency = 0.0
        action: FaultKind | None = None
        for rule in list(self._rules):
            if not rule.applies(method):
                continue
            if rule.kind == "latency":
                latency += rule.seconds
            elif action is None:
                action = rule.kind
            else:
                continue
            self.fired[rule.kind] += 1
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self._rules.remove(rule)
        return FaultDecision(latency, action)
