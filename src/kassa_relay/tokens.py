"""ATOL Online tokens any relay instance can check: ``<payload>.<HMAC-SHA256>``.

The payload is ``<tenant>.<expiry unix time>``; the key lives in the registry bucket
(``token-key``), created by the first instance that needs it. Nothing is stored per token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from kassa_appliance.channels.relay.wire import TENANT_ID


def _mac(key: bytes, payload: str) -> str:
    digest = hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def issue(key: bytes, tenant: str, ttl: float, now: float | None = None) -> str:
    expiry = int((now if now is not None else time.time()) + ttl)
    payload = f"{tenant}.{expiry}"
    return f"{payload}.{_mac(key, payload)}"


def verify(key: bytes, token: str, now: float | None = None) -> str | None:
    """The tenant of a valid, unexpired token; None otherwise."""
    if len(token) > 200 or not token.isascii():
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    tenant, expiry, mac = parts
    if not TENANT_ID.fullmatch(tenant) or not expiry.isdigit() or len(expiry) > 12:
        return None
    if not hmac.compare_digest(_mac(key, f"{tenant}.{expiry}"), mac):
        return None
    if int(expiry) < (now if now is not None else time.time()):
        return None
    return tenant
