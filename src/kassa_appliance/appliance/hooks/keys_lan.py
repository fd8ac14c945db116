"""``snap set`` keys of the ``lan`` group (the LAN API: Atol Web Requests / KKMServer).

``lan.trusted-clients`` and ``lan.cors-origins`` take comma-separated text
(``192.168.1.20,192.168.1.0/24``) or a JSON list. ``lan.password`` is a secret: never
shown in a message.
"""

from __future__ import annotations

from collections.abc import Callable

from kassa_appliance.appliance.hooks.snap_values import (
    BadValue,
    SnapKey,
    _bool,
    _checked,
    _number,
)
from kassa_appliance.channels.lan.settings import (
    check_bind,
    check_file_path,
    check_optional_port,
    check_origins,
    check_password,
    check_port,
    check_trusted_clients,
    check_username,
)
from kassa_appliance.setting_checks import PORT_MAX

NOT_TEXT_PASSWORD = (
    "is not text; expected the password as text (a password of digits only goes in JSON "
    "quotes, e.g. lan.password='\"<the digits>\"')"
)


def parse_password(raw: object) -> object:
    if not isinstance(raw, str):
        raise BadValue(NOT_TEXT_PASSWORD)
    try:
        return check_password(raw)
    except ValueError as error:
        raise BadValue(str(error)) from None


def parse_kkm_port(raw: object) -> object:
    """0 (no second port) or a port: the model's reason mentions only the ports."""
    try:
        return _number(check_optional_port, whole=True)(raw)
    except BadValue:
        raise BadValue(
            f"is not allowed; expected 0 (no second port) or a port from 1 to {PORT_MAX}, "
            "e.g. 5893 (KKMServer's)"
        ) from None


def _pem_file(example: str) -> Callable[[object], object]:
    """An absolute path, with an example under the snap's own common directory."""
    check = _checked(check_file_path)

    def parse(raw: object) -> object:
        try:
            return check(raw)
        except BadValue:
            raise BadValue(f"is not an absolute path; expected e.g. {example}") from None

    return parse


def _list_of(
    check: Callable[[tuple[str, ...]], tuple[str, ...]], example: str
) -> Callable[[object], object]:
    def parse(raw: object) -> object:
        if isinstance(raw, str):
            items = [part.strip() for part in raw.split(",") if part.strip()]
        elif isinstance(raw, list) and all(isinstance(item, str) for item in raw):
            items = list(raw)
        else:
            raise BadValue(f"is not allowed; expected comma-separated values, e.g. {example}")
        try:
            return list(check(tuple(items)))
        except ValueError as error:
            raise BadValue(str(error)) from None

    return parse


KEYS: tuple[SnapKey, ...] = (
    SnapKey("lan.enabled", _bool, "serve the LAN API (Web Requests / KKMServer)"),
    SnapKey("lan.port", _number(check_port, whole=True), "LAN API port (Atol's is 16732)"),
    SnapKey(
        "lan.kkm-port",
        parse_kkm_port,
        "a second port for the same API, e.g. KKMServer's 5893 (0: none)",
    ),
    SnapKey("lan.bind", _checked(check_bind), "address to listen on (0.0.0.0: every interface)"),
    SnapKey("lan.username", _checked(check_username), "HTTP Basic user name of LAN clients"),
    SnapKey("lan.password", parse_password, "HTTP Basic password of LAN clients", True),
    SnapKey(
        "lan.trusted-clients",
        _list_of(check_trusted_clients, "192.168.1.20,192.168.1.0/24"),
        "addresses allowed WITHOUT credentials (1C server, web shop)",
    ),
    SnapKey(
        "lan.tls-cert",
        _pem_file("/var/snap/kassa-appliance/common/lan.crt"),
        "TLS certificate (PEM) for https",
    ),
    SnapKey(
        "lan.tls-key",
        _pem_file("/var/snap/kassa-appliance/common/lan.key"),
        "TLS private key (PEM) for https",
    ),
    SnapKey(
        "lan.cors-origins",
        _list_of(check_origins, "https://shop.example.ru"),
        "web pages allowed to call the API from a browser (* for any)",
    ),
)
