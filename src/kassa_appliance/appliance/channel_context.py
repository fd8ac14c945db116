"""What the daemon hands each channel it runs (the bots, automation, LAN API, relay,
reply delivery): kept in one small dataclass so adding a channel never changes the
daemon's wiring."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kassa_appliance.appliance.config import Config
from kassa_appliance.bitrix.jobs import JobLink
from kassa_appliance.fiscal.engine import Engine


@dataclass
class ChannelContext:
    config: Config
    data_dir: Path
    engine: Engine
    link: JobLink | None
    """The Bitrix24 link (its REST client is ``link.rest``, with the one REST budget), or
    None when no portal is configured."""
    add_status_section: Callable[[str, Callable[[], Any]], None]
    """Adds a section to ``status.json`` (``kassa-appliance status``)."""
    shared: dict[str, Any] = field(default_factory=dict)
    """Objects one channel offers the others, by name (e.g. ``"delivery"``: the worker the
    bots register their senders with). Channels start in a fixed order: delivery first."""
