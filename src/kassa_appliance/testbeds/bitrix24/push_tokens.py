"""The v5 push server's JWT (HS256): issued with the config answer, checked at connect.

The token's ``chan`` claim lists the 32-hex channel ids the holder may subscribe to; a bad
shape, signature or an expired ``exp`` is a :class:`ChannelIdError` (the HTTP 400 case).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable

from kassa_appliance.testbeds.bitrix24.push_channels import ChannelIdError


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_jwt(key: bytes, issuer: str, user_id: int, channels: list[str], now: float) -> str:
    """A token for ``user_id`` granting ``channels``, valid for 12 hours from ``now``."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {
        "iss": issuer,
        "iat": int(now),
        "exp": int(now + 12 * 3600),
        "sub": str(user_id),
        "chan": channels,
    }
    body = _b64(json.dumps(claims).encode())
    signature = hmac.new(key, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{_b64(signature)}"


def verify_jwt(key: bytes, token: str, clock: Callable[[], float]) -> frozenset[str]:
    """The channel ids a valid token grants; :class:`ChannelIdError` otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ChannelIdError("token is not a JWT")
    expected = hmac.new(key, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    if not hmac.compare_digest(expected, signature):
        raise ChannelIdError("token signature is wrong")
    claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    if int(claims.get("exp", 0)) < clock():
        raise ChannelIdError("token has expired")
    return frozenset(str(channel) for channel in claims.get("chan", []))
