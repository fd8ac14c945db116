"""The persisted OAuth tokens: ``<data_dir>/tokens.json`` (atomic, fsync, mode 0600).

It holds the main refresh chain (the refresh token in use and the current access token),
the optional *spare* chain (a second, independent refresh token from the pairing, see
:mod:`kassa_appliance.bitrix.token_chains`), and the *in-flight* marker: written before a
refresh request leaves, cleared when its answer is saved. A marker found at start means
the process died while a refresh was out, so its answer may have been lost and the stored
refresh token may already be used up on the server.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from kassa_appliance.files import write_private_file

TOKEN_FILE_NAME = "tokens.json"
_TOKEN_FILE_FORMAT = 2
"""2 adds ``spare_refresh_token``, ``spare_saved_at`` and ``in_flight`` (all optional)."""

Chain = Literal["main", "spare"]


def pairing_fingerprint(client_id: str, refresh_token: str) -> str:
    """Stable, non-reversible id of a configured refresh token (safe to store and log)."""
    return hashlib.sha256(f"{client_id}\0{refresh_token}".encode()).hexdigest()


@dataclass(frozen=True)
class InFlight:
    """A refresh request that left and whose answer is not saved yet."""

    chain: Chain
    started_at: int


@dataclass(frozen=True)
class StoredTokens:
    refresh_token: str
    access_token: str | None
    expires: int | None
    paired_with: str | None
    """:func:`pairing_fingerprint` of the configured refresh token this chain started from."""
    client_endpoint: str | None = None
    member_id: str | None = None
    user_id: int | None = None
    spare_refresh_token: str | None = None
    """The spare chain's refresh token (None: no spare, or it was used or lost)."""
    spare_saved_at: int | None = None
    """When the spare token was obtained or configured (it lives 180 days)."""
    in_flight: InFlight | None = None


class TokenFile:
    """The persisted OAuth token pair (``<data_dir>/tokens.json``, mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> StoredTokens | None:
        """The stored pair, or None when the file is missing. A corrupt file raises."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
            refresh = data["refresh_token"]
            if not isinstance(refresh, str) or not refresh:
                raise ValueError("refresh_token must be a non-empty string")
            in_flight = _in_flight(data.get("in_flight"))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"token file {self.path} is not valid: {exc}") from None
        user_id = data.get("user_id")
        return StoredTokens(
            refresh_token=refresh,
            access_token=data.get("access_token") or None,
            expires=data.get("expires"),
            paired_with=data.get("paired_with"),
            client_endpoint=data.get("client_endpoint"),
            member_id=data.get("member_id"),
            user_id=int(user_id) if user_id is not None else None,
            spare_refresh_token=data.get("spare_refresh_token") or None,
            spare_saved_at=data.get("spare_saved_at"),
            in_flight=in_flight,
        )

    def save(self, tokens: StoredTokens) -> None:
        in_flight = tokens.in_flight
        data: dict[str, Any] = {
            "format": _TOKEN_FILE_FORMAT,
            "paired_with": tokens.paired_with,
            "refresh_token": tokens.refresh_token,
            "access_token": tokens.access_token,
            "expires": tokens.expires,
            "client_endpoint": tokens.client_endpoint,
            "member_id": tokens.member_id,
            "user_id": tokens.user_id,
            "spare_refresh_token": tokens.spare_refresh_token,
            "spare_saved_at": tokens.spare_saved_at,
            "in_flight": (
                None
                if in_flight is None
                else {"chain": in_flight.chain, "started_at": in_flight.started_at}
            ),
            "saved_at": int(time.time()),
        }
        write_private_file(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def _in_flight(raw: object) -> InFlight | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("chain") not in ("main", "spare"):
        raise ValueError("in_flight must name the chain (main or spare)")
    return InFlight(chain=raw["chain"], started_at=int(raw.get("started_at") or 0))
