"""Which receipt a deal's stage entry or a payment means: the job id, derived from Bitrix24.

The outbox is the ledger. Every job the automation creates is a ``KASSAJOB`` item whose NAME
is its job id:

* ``auto:deal:<deal>:<rule>:<n>:sell`` / ``…:<n>:return`` — the n-th receipt of that deal
  under that rule (n counts from 1, sells and returns together);
* ``auto:pay:<payment>:<rule>`` — the one receipt of a paid payment.

Before it creates a job the drain reads the deal's items (``%NAME`` = ``auto:deal:<deal>:``)
and decides with :func:`next_deal_job`:

* entering the sell stage prints sell n+1 only if there is no receipt yet, or the last one
  is a return that did not fail (the goods came back, the deal is sold again), or the last
  sell was refused and this is a new stage entry (``movedTime`` differs — the manager fixed
  the deal and moved it in again);
* entering the return stage prints return n+1 only if the last receipt is a sell that did
  not fail.

So a re-delivered or collapsed event, a second host reading the same queue, or a deal moved
out and back in without a return all find the same last receipt and create nothing (two
hosts racing create the same NAME; the kassa's journal takes a job id once).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from kassa_appliance.bitrix.protocol import STATE_FAILED, item_property
from kassa_appliance.inputs import InputRejected, decode_json_text

Operation = Literal["sell", "return"]
PREFIX = "auto"


def deal_prefix(deal_id: int) -> str:
    return f"{PREFIX}:deal:{deal_id}:"


def deal_job_id(deal_id: int, rule_id: str, seq: int, operation: Operation) -> str:
    return f"{deal_prefix(deal_id)}{rule_id}:{seq}:{operation}"


def payment_prefix(payment_id: int) -> str:
    return f"{PREFIX}:pay:{payment_id}:"


def payment_job_id(payment_id: int, rule_id: str) -> str:
    return f"{payment_prefix(payment_id)}{rule_id}"


@dataclass(frozen=True)
class LedgerEntry:
    job_id: str
    seq: int
    operation: Operation
    state: str
    entry: str
    """The stage entry (the deal's ``movedTime``) the job was made for."""

    @property
    def failed(self) -> bool:
        return self.state == STATE_FAILED


def _entry_of(reply_text: str) -> str:
    try:
        reply = decode_json_text(reply_text, "REPLY") if reply_text else None
    except InputRejected:
        return ""
    targets = reply.get("targets") if isinstance(reply, dict) else None
    for target in targets if isinstance(targets, list) else []:
        if isinstance(target, dict) and target.get("kind") == "crm":
            return str(target.get("entry") or "")
    return ""


def deal_ledger(
    items: Iterable[Mapping[str, Any]], deal_id: int, rule_id: str
) -> list[LedgerEntry]:
    """The deal's receipts under ``rule_id`` in order (items from ``entity.item.get``)."""
    prefix = f"{deal_prefix(deal_id)}{rule_id}:"
    found: dict[str, LedgerEntry] = {}
    for item in items:
        name = str(item.get("NAME") or "")
        if not name.startswith(prefix):
            continue
        seq_text, _, operation = name[len(prefix) :].partition(":")
        if not seq_text.isdigit() or operation not in ("sell", "return"):
            continue
        entry = LedgerEntry(
            name,
            int(seq_text),
            "sell" if operation == "sell" else "return",
            item_property(item, "STATE"),
            _entry_of(item_property(item, "REPLY")),
        )
        known = found.get(name)
        if known is None or (known.failed and not entry.failed):
            found[name] = entry  # two hosts made the same NAME: the live one counts
    return sorted(found.values(), key=lambda e: e.seq)


def next_deal_job(
    ledger: list[LedgerEntry],
    *,
    deal_id: int,
    rule_id: str,
    operation: Operation,
    entry: str,
) -> str | None:
    """The job id this stage entry prints under, or None when it prints nothing."""
    last = ledger[-1] if ledger else None
    seq = (last.seq if last else 0) + 1
    if operation == "sell":
        if last is None:
            return deal_job_id(deal_id, rule_id, seq, "sell")
        if last.operation == "return":
            return None if last.failed else deal_job_id(deal_id, rule_id, seq, "sell")
        if last.failed and last.entry != entry:
            return deal_job_id(deal_id, rule_id, seq, "sell")
        return None
    if last is not None and last.operation == "sell" and not last.failed:
        return deal_job_id(deal_id, rule_id, seq, "return")
    return None
