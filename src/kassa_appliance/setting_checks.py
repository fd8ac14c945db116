"""Rules and building blocks every part's settings share (URLs, text, optional values).

Each part owns the pydantic model of its settings section (``registers.settings``,
``bitrix.settings``) and :mod:`kassa_appliance.appliance.config` composes them; the rules
they have in common live here so that none of them imports another.

A URL the configure hook accepts must be one the daemon can open: ``urlsplit`` alone lets
through ``http://127.0.0.1:abc`` (its ``.port`` raises later) and ``:99999`` (httpx builds a
request that cannot be sent), so :func:`parse_url` checks scheme, host and port itself and
then parses the value with httpx, the client the daemon uses, as the last word. Each
problem is raised as a ``ValueError`` whose text reads after "is not a valid URL: ".

Text settings (the cashier's name, paths) must not hold control characters
(:func:`first_control_character`): a NUL or a newline in ``operator.name`` would be sent to
the register as tag 1021.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from collections.abc import Callable
from pathlib import PurePosixPath
from urllib.parse import SplitResult, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict

from kassa_appliance.inputs import shorten

PORT_MIN = 1
PORT_MAX = 65535
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_MAX_HOST_LENGTH = 253
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
"""Control, format (invisible), surrogate, private-use, unassigned, line/paragraph
separators: nothing a receipt or a path should carry. Spaces (``Zs``) are allowed."""


def first_control_character(value: str) -> str | None:
    """The first character of ``value`` that is not plain text, or None."""
    for char in value:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            return char
    return None


def parse_url(value: str, schemes: tuple[str, ...]) -> SplitResult:
    """Split ``value`` and check it the way the daemon will use it.

    Raises ``ValueError("scheme")`` (just that word) when the scheme is not one of
    ``schemes``, so the caller can say which URLs it wants; any other problem is a
    ``ValueError`` describing it (``port "abc" is not a number from 1 to 65535``).
    """
    if any(char.isspace() for char in value) or first_control_character(value) is not None:
        raise ValueError("it contains a space or a control character")
    scheme, sep, _ = value.partition("://")
    if not sep or scheme.lower() not in schemes:
        raise ValueError("scheme")
    try:
        parts = urlsplit(value)
    except ValueError:
        raise ValueError("the host in [ ] is not an IPv6 address") from None
    host_port = parts.netloc.rpartition("@")[2]
    host, port = _split_host_port(host_port)
    _check_host(host)
    if port is not None:
        _check_port(port)
    try:
        parsed = httpx.URL(value)
    except httpx.InvalidURL as error:
        raise ValueError(f"it cannot be used ({shorten(str(error), 80)})") from None
    if not host.startswith("["):
        _check_dns_name(parsed.raw_host.decode("ascii", "replace"), host)
    return parts


def _split_host_port(host_port: str) -> tuple[str, str | None]:
    if host_port.startswith("["):
        end = host_port.find("]")
        rest = host_port[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            raise ValueError("the host in [ ] is not an IPv6 address")
        return host_port[: end + 1], (rest[1:] if rest else None)
    host, sep, port = host_port.partition(":")
    if ":" in port:
        raise ValueError("it has more than one ':'; an IPv6 host goes in brackets, e.g. [::1]")
    return host, (port if sep else None)


def _check_host(host: str) -> None:
    if not host:
        raise ValueError("it has no host")
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"the host {shorten(host, 60)} is not an IPv6 address") from None
        return
    last_label = host.rstrip(".").rpartition(".")[2]
    if last_label.isascii() and last_label.isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"the host {shorten(host, 60)} is not an IPv4 address") from None


def _check_dns_name(ascii_host: str, shown: str) -> None:
    try:
        ipaddress.IPv4Address(ascii_host)
        return
    except ValueError:
        pass
    name = ascii_host[:-1] if ascii_host.endswith(".") else ascii_host
    labels = name.split(".")
    if len(name) > _MAX_HOST_LENGTH or not all(_LABEL.fullmatch(label) for label in labels):
        raise ValueError(
            f"the host {shorten(shown, 60)} is neither a host name (letters, digits and "
            "dashes between dots) nor an IP address"
        )


def _check_port(port: str) -> None:
    if port.isascii() and port.isdigit() and len(port) <= 5 and PORT_MIN <= int(port) <= PORT_MAX:
        return
    shown = (
        port if port.isascii() and port.isdigit() and len(port) <= 12 else f'"{shorten(port, 20)}"'
    )
    if not port:
        raise ValueError("it has a ':' but no port number after it")
    raise ValueError(f"port {shown} is not a number from {PORT_MIN} to {PORT_MAX}")


_LOOPBACK_NAMES = frozenset({"localhost"})


class SettingsSection(BaseModel):
    """A section of ``config.json``: unknown keys refused, values frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def checked_url(
    value: str, schemes: tuple[str, ...], wrong_scheme: str, example: str
) -> SplitResult:
    """:func:`parse_url`, with its problem turned into this key's reason."""
    try:
        return parse_url(value, schemes)
    except ValueError as error:
        if str(error) == "scheme":
            raise ValueError(f"{wrong_scheme}; {example}") from None
        raise ValueError(f"is not a valid URL: {error}; {example}") from None


def check_http_url(value: str) -> str:
    """An ``http://`` or ``https://`` URL with a host (the Atol Web Requests server)."""
    checked_url(
        value, ("http", "https"), "is not an http(s) URL", "expected e.g. http://127.0.0.1:16732"
    )
    return value


KASSA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
"""A kassa id: ``kassa.id`` of the appliance, and the kassa's name on the relay."""


def check_kassa_id(value: str) -> str:
    if not KASSA_ID.fullmatch(value):
        raise ValueError(
            "is not allowed; expected 1-64 letters, digits, dashes or underscores "
            "starting with a letter or digit"
        )
    return value


def check_absolute_path(value: str, example: str) -> str:
    """An absolute path of a file the daemon reads, without ``..`` or control characters;
    ``example`` (a path under the snap's common directory) is shown on a refusal."""
    path = PurePosixPath(value)
    if not path.is_absolute() or ".." in path.parts or first_control_character(value):
        raise ValueError(f"is not an absolute path; expected e.g. {example}")
    return value


def optional(check: Callable[[str], str]) -> Callable[[str | None], str | None]:
    def run(value: str | None) -> str | None:
        return None if value is None else check(value)

    return run
