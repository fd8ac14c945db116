"""The Push&Pull client's small types: timing knobs, its status, and the doorbell."""

from __future__ import annotations

from dataclasses import dataclass

from kassa_appliance.bitrix.pull_frames import PullMessage

DOORBELL_COMMAND = "kassa.job"


def doorbell(message: PullMessage) -> tuple[str, str] | None:
    """``(job id, kassa id)`` if the message is a Kassa doorbell, else ``None``.

    The sender is not trustworthy (any app user can publish): act on the stored job only.
    """
    if message.command != DOORBELL_COMMAND:
        return None
    job, kassa = message.params.get("job"), message.params.get("kassa")
    if isinstance(job, str | int) and isinstance(kassa, str | int) and str(job):
        return str(job), str(kassa)
    return None


@dataclass(frozen=True)
class PullTiming:
    config_check_interval: float = 60.0
    stable_after: float = 30.0
    """A connection that lasted this long resets the back-off."""
    open_timeout: float = 10.0
    ping_interval: float | None = 30.0
    """Our own WebSocket pings (a dead NAT mapping shows up within ~2 intervals)."""
    jsonrpc_ping_timeout: float = 20.0
    """v5: no server ``ping`` for this long → close 3005 and reconnect."""
    wrong_channel_delay: tuple[float, float] = (5.0, 35.0)
    """Random wait before fetching the config after HTTP 400 / close 4010."""
    server_restart_delay: tuple[float, float] = (10.0, 120.0)
    """Random wait after ``config_expire`` / ``server_restart`` before fetching the config."""
    max_frame: int = 4 * 1_048_576


@dataclass(frozen=True)
class PullStatus:
    connected: bool = False
    last_error: str | None = None
    connections: int = 0
    """Successful WebSocket connects so far."""
    config_fetches: int = 0
    last_mid: str | None = None
    server_version: int | None = None
