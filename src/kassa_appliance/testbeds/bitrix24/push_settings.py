"""The push server emulator's knobs and counters: :class:`PushSettings` and :class:`PushStats`.

Shared by :mod:`~kassa_appliance.testbeds.bitrix24.push` (the server) and its helpers
(:mod:`~kassa_appliance.testbeds.bitrix24.push_subscribers`,
:mod:`~kassa_appliance.testbeds.bitrix24.push_history`)
so none of them has to import the server module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class PushSettings:
    signature_key: bytes = b"kassa-emulator-push-signature-key"
    version: int = 4
    """4: text (or protobuf on ``binaryMode=true``); 5: JSON-RPC with a JWT."""
    wire_version: int | None = None
    """The framing the server really speaks, when it differs from the ``version`` the
    portal's config announces: ``version=5, wire_version=4`` is a portal that says v5
    while its push server (ps2) still sends v4 text frames and no JSON-RPC pings."""
    channel_ttl: float = 43205.0
    """CPullChannel::CHANNEL_TTL (12 h + 5 s); compress it to test expiry."""
    config_ttl: float = 86400.0
    """``exp`` of the config answer, seconds after it was issued."""
    buffer_delay: tuple[float, float] = (0.25, 0.4)
    """Random delay before a connection's buffered records go out as one frame."""
    ping_interval: float | None = 120.0
    """WebSocket ping frames (v4); ``None`` disables them."""
    jsonrpc_ping_interval: float = 10.0
    """v5: the text ``ping`` a client must answer with ``pong``."""
    hostname: str = "kassa-emulator.bitrix24.local"
    sub_route: str = "/bitrix/subws/"
    pub_route: str = "/bitrix/pub/"
    max_payload: int = 1_048_576
    store_limit: int = 10_000
    """Stored (replayable) messages kept at most, oldest dropped first."""
    mode: Literal["personal", "shared"] = "personal"
    client_id: str = "emulator-push-client-id"
    """Only used in ``shared`` mode, where the URL must carry ``clientId``."""


@dataclass
class PushStats:
    connections: int = 0
    frames_sent: int = 0
    records_sent: int = 0
    rejected_400: int = 0
    closed_4010: int = 0
    acks: list[str] = field(default_factory=list)
    """v5 ``mack:<mid>`` acknowledgements received."""
