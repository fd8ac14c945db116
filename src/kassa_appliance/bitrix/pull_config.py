"""The Push&Pull connection config (``pull.application.config.get``): validation, freshness
and the WebSocket URL, exactly as bitrix24-notes.md §1.2–§1.4 and §1.8 describe them.

The channel ids in the URL are subscription secrets: nothing here logs them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

REVISION = 19
"""The pull API revision the protocol here follows (jssdk ``REVISION``)."""
MIN_SERVER_VERSION = 3
"""v≤2 resumes history with tag/time instead of ``mid``; not supported."""
CHANNEL_ORDER = ("private", "shared")
"""``CHANNEL_ID`` lists the private channel first, then the shared one."""


class PullConfigError(ValueError):
    """The config answer cannot be used; the message names the field and what was expected."""


@dataclass(frozen=True)
class PullChannel:
    type: str
    id: str
    end: float | None
    """Unix time the channel stops being published to; ``None`` when the answer has none."""


@dataclass(frozen=True)
class PullConfig:
    version: int
    mode: str
    websocket: str
    config_timestamp: int
    channels: tuple[PullChannel, ...]
    exp: int
    jwt: str | None
    client_id: str | None
    revision_web: int

    @property
    def json_rpc(self) -> bool:
        return self.version >= 5

    @classmethod
    def from_answer(cls, answer: Mapping[str, Any]) -> PullConfig:
        """Parse the ``result`` of the config method (a full ``{"result": …}`` envelope too)."""
        if "server" not in answer and isinstance(answer.get("result"), Mapping):
            answer = answer["result"]
        server = _mapping(answer, "server")
        if server.get("server_enabled") is False:
            raise PullConfigError("server.server_enabled is false: the portal's push server is off")
        version = _integer(server, "version", "server.version")
        if version < MIN_SERVER_VERSION:
            raise PullConfigError(
                f"server.version is {version}; expected {MIN_SERVER_VERSION} or newer"
            )
        websocket = server.get("websocket_secure") or server.get("websocket")
        if not isinstance(websocket, str) or not websocket.startswith(("ws://", "wss://")):
            raise PullConfigError(
                "server.websocket_secure/websocket is missing or not a ws:// or wss:// URL"
            )
        if server.get("websocket_enabled") is False:
            raise PullConfigError(
                "server.websocket_enabled is false; long polling is not supported"
            )
        mode = str(server.get("mode") or "personal")
        client_id = answer.get("clientId")
        if mode == "shared" and not (isinstance(client_id, str) and client_id):
            raise PullConfigError("server.mode is 'shared' but clientId is missing")
        jwt = answer.get("jwt")
        channels = _channels(answer.get("channels"))
        if not (isinstance(jwt, str) and jwt) and not any(
            c.type in CHANNEL_ORDER for c in channels
        ):
            raise PullConfigError(
                "channels has neither a private nor a shared channel (and no jwt)"
            )
        api = answer.get("api")
        revision = api.get("revision_web", 0) if isinstance(api, Mapping) else 0
        exp = answer.get("exp", 0)
        return cls(
            version=version,
            mode=mode,
            websocket=websocket,
            config_timestamp=_integer(server, "config_timestamp", "server.config_timestamp", 0),
            channels=channels,
            exp=exp if isinstance(exp, int) and not isinstance(exp, bool) else 0,
            jwt=jwt if isinstance(jwt, str) and jwt else None,
            client_id=client_id if isinstance(client_id, str) and client_id else None,
            revision_web=revision if isinstance(revision, int) else 0,
        )

    def connection_url(self, mid: str | None) -> str:
        """jssdk ``getConnectionPath`` for the WebSocket; text frames (no ``binaryMode``)."""
        params: dict[str, str] = {}
        if self.jwt:
            params["token"] = self.jwt
        else:
            by_type = {c.type: c.id for c in self.channels}
            ids = [by_type[kind] for kind in CHANNEL_ORDER if by_type.get(kind)]
            if not ids:
                raise PullConfigError("Empty channels: no private or shared channel id")
            params["CHANNEL_ID"] = "/".join(ids)
        if self.json_rpc:
            params["jsonRpc"] = "true"
        if self.mode == "shared":
            assert self.client_id is not None
            params["clientId"] = self.client_id
        if mid:
            params["mid"] = mid
        params["revision"] = str(REVISION)
        separator = "&" if "?" in self.websocket else "?"
        return self.websocket + separator + urlencode(params)

    def stale_reason(self, now: float, expected_timestamp: int) -> str | None:
        """Why this config must be fetched again (jssdk ``isConfigActual``), or ``None``."""
        if self.config_timestamp != expected_timestamp:
            return f"config_timestamp changed ({expected_timestamp} -> {self.config_timestamp})"
        if self.exp > 0 and self.exp < now:
            return "the config's exp has passed"
        if not self.channels and not self.jwt:
            return "the config has no channels"
        for channel in self.channels:
            if channel.end is not None and channel.end < now:
                return f"the {channel.type} channel has expired"
        return None

    def with_new_channel(self, new_channel: Any) -> PullConfig | None:
        """The config after ``channel_expire``/``reconnect`` with ``new_channel``, or ``None``
        when ``new_channel`` does not replace one of our channels (then fetch the config)."""
        if not isinstance(new_channel, Mapping):
            return None
        try:
            (channel,) = _channels({"new": new_channel})
        except PullConfigError:
            return None
        if channel.type not in {c.type for c in self.channels}:
            return None
        channels = tuple(channel if c.type == channel.type else c for c in self.channels)
        return replace(self, channels=channels)


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, Mapping):
        raise PullConfigError(f"{key} is missing or not an object (got {type(value).__name__})")
    return value


def _integer(data: Mapping[str, Any], key: str, name: str, default: int | None = None) -> int:
    value = data.get(key, default)
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise PullConfigError(f"{name} must be an integer, got {value!r}")
    return value


def _channels(raw: Any) -> tuple[PullChannel, ...]:
    if raw is None or raw == []:  # PHP encodes an empty array as []
        return ()
    if not isinstance(raw, Mapping):
        raise PullConfigError(f"channels must be an object, got {type(raw).__name__}")
    channels: list[PullChannel] = []
    for key, entry in raw.items():
        if not isinstance(entry, Mapping):
            raise PullConfigError(f"channels.{key} must be an object")
        channel_id = entry.get("id")
        if not isinstance(channel_id, str) or not channel_id:
            raise PullConfigError(f"channels.{key}.id must be a non-empty string")
        kind = entry.get("type") or key
        channels.append(PullChannel(str(kind), channel_id, _end_time(entry.get("end"), key)))
    return tuple(channels)


def _end_time(value: Any, key: str) -> float | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise PullConfigError(f"channels.{key}.end must be an ISO-8601 string, got {value!r}")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise PullConfigError(
            f"channels.{key}.end is {value!r}; expected ISO-8601 like 2026-04-01T05:05:23+02:00"
        ) from exc
    if moment.tzinfo is None:
        raise PullConfigError(f"channels.{key}.end {value!r} has no UTC offset")
    return moment.timestamp()
