"""``snap set`` keys of the ``relay`` group (the cloud relay on NATS JetStream)."""

from __future__ import annotations

from collections.abc import Callable

from kassa_appliance.appliance.hooks.snap_values import BadValue, SnapKey
from kassa_appliance.channels.relay.settings import (
    MAX_SERVERS,
    check_ca_file,
    check_relay_kassa,
    check_server_url,
    check_tenant,
)

PASSWORD_MIN_LENGTH = 16
PASSWORD_MAX_LENGTH = 512


def _bool(raw: object) -> object:
    if isinstance(raw, bool):
        return raw
    if raw in ("true", "false"):
        return raw == "true"
    raise BadValue("is not allowed; expected true or false")


def _text(check: Callable[[str], str]) -> Callable[[object], object]:
    def parse(raw: object) -> object:
        if not isinstance(raw, str):
            raise BadValue("is not allowed; expected text")
        try:
            return check(raw)
        except ValueError as error:
            raise BadValue(str(error)) from None

    return parse


def _servers(raw: object) -> object:
    """``tls://a:4222,tls://b:4222`` (or a JSON list of URLs)."""
    items = raw.split(",") if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or len(items) > MAX_SERVERS:
        raise BadValue(f"is not allowed; expected 1 to {MAX_SERVERS} tls:// URLs, comma-separated")
    urls = []
    for item in items:
        if not isinstance(item, str):
            raise BadValue("is not allowed; expected tls:// URLs")
        try:
            urls.append(check_server_url(item.strip()))
        except ValueError as error:
            shown = "" if len(items) == 1 else f"(server {item.strip()[:80]!r}) "
            raise BadValue(f"{shown}{error}") from None
    return tuple(urls)


def _user(raw: object) -> object:
    if not isinstance(raw, str) or not raw or len(raw) > 128 or not raw.isprintable() or " " in raw:
        raise BadValue("is not allowed; expected the NATS user name the relay's operator gave")
    return raw


def _password(raw: object) -> object:
    if not isinstance(raw, str) or any(c.isspace() or not c.isprintable() for c in raw):
        raise BadValue("is not allowed; expected the password as issued (no spaces)")
    if not PASSWORD_MIN_LENGTH <= len(raw) <= PASSWORD_MAX_LENGTH:
        raise BadValue(
            f"has the wrong length; expected {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} "
            "characters"
        )
    return raw


KEYS: tuple[SnapKey, ...] = (
    SnapKey("relay.enabled", _bool, "take checks from the cloud relay (true | false)"),
    SnapKey("relay.servers", _servers, "the relay's NATS servers, tls://host:port,…"),
    SnapKey("relay.tenant", _text(check_tenant), "tenant id on the relay"),
    SnapKey("relay.kassa", _text(check_relay_kassa), "kassa id on the relay (default kassa.id)"),
    SnapKey("relay.user", _user, "NATS user (default kassa_<tenant>_<kassa>)"),
    SnapKey("relay.password", _password, "NATS password of this kassa", True),
    SnapKey("relay.ca-file", _text(check_ca_file), "CA file of the relay's NATS servers"),
)
