"""The ``lan`` section of the configuration: the LAN API (Atol Web Requests / KKMServer compatible).

Off by default. The rules here run on every load of ``config.json`` and on every
``snap set`` (the keys are in :mod:`kassa_appliance.appliance.hooks.keys_lan`).

When on, every client must prove who it is: HTTP Basic with ``username``/``password``, or
(on purpose, for clients that cannot send credentials, such as many 1C and web-shop
modules) an address on ``trusted_clients``. Never open to everyone: an on switch with
neither is refused, and so is an allow-list entry wider than a /8 (IPv4) or /32 (IPv6).
"""

from __future__ import annotations

import ipaddress
from pathlib import PurePosixPath

from pydantic import SecretStr, field_validator, model_validator

from kassa_appliance.inputs import shorten
from kassa_appliance.setting_checks import PORT_MAX, SettingsSection, first_control_character

DEFAULT_PORT = 16732
"""Atol Web Requests' own port: clients find us where they look for it."""
PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 256
USERNAME_MAX_LENGTH = 64
MAX_TRUSTED_CLIENTS = 64
MAX_CORS_ORIGINS = 32
NARROWEST_ALLOWED_PREFIX = {4: 8, 6: 32}
"""The widest allow-list network per IP version: a shop's LAN, never the internet."""


def check_port(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= PORT_MAX:
        raise ValueError(f"is not a port; expected a number from 1 to {PORT_MAX}")
    return value


def check_optional_port(value: int) -> int:
    """0 switches the extra port off."""
    return value if value == 0 else check_port(value)


def check_bind(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(
            "is not an IP address; expected the address to listen on, e.g. 0.0.0.0 (every "
            "interface), 192.168.1.10 or ::"
        ) from None
    return value


def check_username(value: str) -> str:
    if not value or len(value) > USERNAME_MAX_LENGTH:
        raise ValueError(f"is not a user name; expected 1 to {USERNAME_MAX_LENGTH} characters")
    if ":" in value or any(char.isspace() for char in value) or first_control_character(value):
        raise ValueError("holds ':', a space or a control character; expected a plain name")
    return value


def check_password(value: str) -> str:
    """The reasons never quote the value: it is a secret."""
    if any(char.isspace() or not char.isprintable() for char in value):
        raise ValueError("contains spaces or control characters; expected printable text")
    if len(value) < PASSWORD_MIN_LENGTH:
        raise ValueError(f"is too short; expected at least {PASSWORD_MIN_LENGTH} characters")
    if len(value) > PASSWORD_MAX_LENGTH:
        raise ValueError(f"is too long; expected at most {PASSWORD_MAX_LENGTH} characters")
    return value


def check_trusted_client(value: str) -> str:
    """One address (``192.168.1.20``) or network (``192.168.1.0/24``), never everyone."""
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise ValueError(
            f'holds "{shorten(value, 60)}", which is not an IP address or network; expected e.g. '
            "192.168.1.20 or 192.168.1.0/24"
        ) from None
    widest = NARROWEST_ALLOWED_PREFIX[network.version]
    if network.prefixlen < widest:
        raise ValueError(
            f'holds "{shorten(value, 60)}", which opens the API to too many addresses; '
            f"expected the clients' own addresses or a network of at most /{widest}"
        )
    return str(network) if network.num_addresses > 1 else str(network.network_address)


def check_trusted_clients(values: tuple[str, ...]) -> tuple[str, ...]:
    if len(values) > MAX_TRUSTED_CLIENTS:
        raise ValueError(f"has {len(values)} entries; expected at most {MAX_TRUSTED_CLIENTS}")
    return tuple(dict.fromkeys(check_trusted_client(value) for value in values))


def check_origin(value: str) -> str:
    """``*`` (any page) or ``https://host[:port]`` / ``http://host[:port]``."""
    if value == "*":
        return value
    scheme, sep, rest = value.partition("://")
    if (
        scheme not in ("http", "https")
        or not sep
        or not rest
        or "/" in rest
        or any(char.isspace() for char in rest)
        or first_control_character(rest)
    ):
        raise ValueError(
            f'holds "{shorten(value, 60)}", which is not a page origin; expected * or e.g. '
            "https://shop.example.ru (scheme and host, no path)"
        )
    return value.lower()


def check_origins(values: tuple[str, ...]) -> tuple[str, ...]:
    if len(values) > MAX_CORS_ORIGINS:
        raise ValueError(f"has {len(values)} entries; expected at most {MAX_CORS_ORIGINS}")
    return tuple(dict.fromkeys(check_origin(value) for value in values))


def check_file_path(value: str) -> str:
    if not value.startswith("/") or first_control_character(value) or "\x00" in value:
        raise ValueError("is not an absolute path; expected e.g. /var/snap/kassa/common/lan.pem")
    return str(PurePosixPath(value))


class LanConfig(SettingsSection):
    enabled: bool = False
    port: int = DEFAULT_PORT
    """Web Requests (and KKMServer ``/Execute``) port."""
    kkm_port: int = 0
    """A second port serving the same API (KKMServer clients look at 5893); 0: none."""
    bind: str = "0.0.0.0"
    username: str | None = None
    password: SecretStr | None = None
    trusted_clients: tuple[str, ...] = ()
    """Addresses that may call without credentials (warned about in the log and status)."""
    tls_cert: str | None = None
    tls_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    """Pages allowed to call from a browser; a browser request from any other origin is
    refused (so a web page cannot ride on a trusted address)."""

    _port = field_validator("port")(check_port)
    _kkm_port = field_validator("kkm_port")(check_optional_port)
    _bind = field_validator("bind")(check_bind)
    _trusted = field_validator("trusted_clients")(check_trusted_clients)
    _origins = field_validator("cors_origins")(check_origins)

    @field_validator("username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        return None if value is None else check_username(value)

    @field_validator("password")
    @classmethod
    def _password(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_password(value.get_secret_value())
        return value

    @field_validator("tls_cert", "tls_key")
    @classmethod
    def _paths(cls, value: str | None) -> str | None:
        return None if value is None else check_file_path(value)

    @model_validator(mode="after")
    def _consistent(self) -> LanConfig:
        """Pairs are checked once the API is switched on: ``snap set`` takes one key at a
        time, so a half-set pair is fine while the API is off."""
        if self.kkm_port and self.kkm_port == self.port:
            raise ValueError("lan.kkm-port equals lan.port; expected another port or 0")
        if not self.enabled:
            return self
        if (self.username is None) != (self.password is None):
            raise ValueError("lan.username and lan.password go together; expected both")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("lan.tls-cert and lan.tls-key go together; expected both")
        if self.username is None and not self.trusted_clients:
            raise ValueError(
                "lan.enabled needs lan.username and lan.password (HTTP Basic), or "
                "lan.trusted-clients for clients that cannot send credentials"
            )
        return self

    @property
    def secured_by_password(self) -> bool:
        return self.username is not None and self.password is not None
