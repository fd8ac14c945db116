"""``snap set`` keys of the ``relay`` group (the cloud relay on NATS JetStream)."""

from __future__ import annotations

from kassa_appliance.appliance.hooks.snap_values import (
    BadValue,
    SnapKey,
    _bool,
    _checked,
    _secret,
)
from kassa_appliance.channels.relay.settings import (
    MAX_SERVERS,
    check_ca_file,
    check_relay_kassa,
    check_server_url,
    check_tenant,
)


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
        raise BadValue(
            "is not allowed; expected the NATS user name the relay's operator gave: 1-128 "
            "characters without spaces, e.g. kassa_shop-1_kassa-2"
        )
    return raw


def _password(raw: object) -> object:
    """Checked like the other secrets (``bitrix.client-secret``, ``maxbot.token``): the
    same lengths, the same words; never the value."""
    if not isinstance(raw, str):
        raise BadValue(
            "is not text; expected the password the relay's operator gave, as text (one of "
            "digits only goes in JSON quotes, e.g. relay.password='\"<the digits>\"')"
        )
    return _secret(raw)


KEYS: tuple[SnapKey, ...] = (
    SnapKey("relay.enabled", _bool, "take checks from the cloud relay (true | false)"),
    SnapKey("relay.servers", _servers, "the relay's NATS servers, tls://host:port,…"),
    SnapKey("relay.tenant", _checked(check_tenant), "tenant id on the relay"),
    SnapKey("relay.kassa", _checked(check_relay_kassa), "kassa id on the relay (default kassa.id)"),
    SnapKey("relay.user", _user, "NATS user (default kassa_<tenant>_<kassa>)"),
    SnapKey("relay.password", _password, "NATS password of this kassa", True),
    SnapKey("relay.ca-file", _checked(check_ca_file), "CA file of the relay's NATS servers"),
)
