"""Channel ids and their signatures, as the Bitrix24 portal and the push server share them.

Facts (bitrix24-notes.md §1.2, §2.3): every channel id is 32 lower-case hex chars; the portal
hands out *signed* ids ``<id>.<hmac-sha1 hex>``; a v4 private channel is
``<private>:<public>.<HMAC("private:public")>``; the push server accepts only ids whose
signature matches its key, and the ``/pub/`` endpoint addresses the bare 32-hex id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

CHANNEL_ID_RE = re.compile(r"^([a-f0-9]{32})(?::([a-f0-9]{32}))?(?:\.([a-f0-9]{40}))?$")


class ChannelIdError(ValueError):
    """A channel id the push server refuses (the HTTP 400 case)."""


def sign(key: bytes, value: str) -> str:
    """HMAC-SHA1 hex signature, the portal's default ``signature_algo``."""
    return hmac.new(key, value.encode(), hashlib.sha1).hexdigest()


def new_channel_hex() -> str:
    return secrets.token_hex(16)


def signed_channel_id(key: bytes, private_hex: str, public_hex: str | None = None) -> str:
    value = f"{private_hex}:{public_hex}" if public_hex else private_hex
    return f"{value}.{sign(key, value)}"


def signed_public_id(key: bytes, public_hex: str) -> str:
    return f"{public_hex}.{sign(key, 'public:' + public_hex)}"


def verify_channel_id(key: bytes, channel_id: str) -> str:
    """Check one id from a ``CHANNEL_ID`` list; returns its 32-hex private part."""
    match = CHANNEL_ID_RE.match(channel_id)
    if match is None:
        raise ChannelIdError(
            f"channel id {channel_id[:80]!r} is malformed: expected "
            "<32 hex>[:<32 hex>].<40 hex signature>"
        )
    private_hex, public_hex, signature = match.groups()
    if signature is None:
        raise ChannelIdError(f"channel id {private_hex[:8]}… is not signed")
    value = f"{private_hex}:{public_hex}" if public_hex else private_hex
    if not hmac.compare_digest(signature, sign(key, value)):
        raise ChannelIdError(f"channel id {private_hex[:8]}… has a wrong signature")
    return private_hex


def bare_channel_hex(channel_id: str) -> str:
    """The 32-hex private id of a signed, ``priv:pub`` or bare id (for publishing)."""
    match = CHANNEL_ID_RE.match(channel_id)
    if match is None:
        raise ChannelIdError(f"channel id {channel_id[:80]!r} is malformed")
    return match.group(1)


def iso_time(unix: float) -> str:
    """PHP ``date('c', …)``: ISO-8601 with a numeric offset."""
    return datetime.fromtimestamp(int(unix), UTC).isoformat(timespec="seconds")


@dataclass(frozen=True)
class Channel:
    """One portal channel: private (per user) or shared (user 0) of one application."""

    private_hex: str
    public_hex: str | None
    start: float
    end: float
    type: str

    def signed_id(self, key: bytes) -> str:
        return signed_channel_id(key, self.private_hex, self.public_hex)

    def describe(self, key: bytes) -> dict[str, str]:
        """The entry of ``channels`` in the config answer (and of ``new_channel``)."""
        entry = {
            "id": self.signed_id(key),
            "start": iso_time(self.start),
            "end": iso_time(self.end),
            "type": self.type,
        }
        if self.public_hex:
            entry["public_id"] = signed_public_id(key, self.public_hex)
        return entry
