"""The ``bitrix`` section of the configuration: which portal, and how the appliance signs in.

OAuth (client id, secret and the refresh token from pairing) for the full link with
Push&Pull, or an inbound webhook for REST only; ``allowed_users`` and ``allowed_departments``
limit who may create jobs (``bitrix/departments.py``); ``notify_users`` get the kassa's problem
notifications (``bitrix/notifications.py``);
``rest_rate``/``rest_burst`` size the daemon's REST budget (``bitrix/budget.py``).
The rules here run on every load of ``config.json`` and on every ``snap set``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from pydantic import SecretStr, field_validator

from kassa_appliance.bitrix.budget import DEFAULT_BURST, DEFAULT_RATE
from kassa_appliance.setting_checks import (
    SettingsSection,
    check_http_url,
    checked_url,
    is_loopback,
    optional,
    parse_url,
)

_WEBHOOK_PATH = re.compile(r"/rest/[0-9]+/[A-Za-z0-9_]+/?")


def check_portal_url(value: str, *, allow_loopback_http: bool = True) -> str:
    """A portal base URL: ``https://host[:port]``, normalised without a trailing slash.

    ``allow_loopback_http`` admits ``http://127.0.0.1:…`` for the loopback emulator used
    by tests and the demo; the configure hook passes False (devices talk https only).
    """
    example = "expected e.g. https://example.bitrix24.ru"
    parts = checked_url(value, ("http", "https"), "is not an https URL", example)
    plain_ok = allow_loopback_http and parts.scheme == "http" and is_loopback(parts.hostname or "")
    if parts.scheme != "https" and not plain_ok:
        raise ValueError(f"is not an https URL; {example}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"is not a portal address; {example} (no path)")
    return f"{parts.scheme}://{parts.netloc}"


def check_webhook_url(value: str, *, allow_loopback_http: bool = True) -> str:
    """An inbound webhook ``https://portal/rest/<user id>/<code>/``.

    The reasons never quote the value: it is a secret.
    """
    problem = "is not an inbound webhook URL; expected https://<portal>/rest/<user id>/<code>/"
    try:
        parts = parse_url(value, ("http", "https"))
    except ValueError:
        raise ValueError(problem) from None
    plain_ok = allow_loopback_http and parts.scheme == "http" and is_loopback(parts.hostname or "")
    if (
        (parts.scheme != "https" and not plain_ok)
        or "@" in parts.netloc
        or not _WEBHOOK_PATH.fullmatch(parts.path)
        or parts.query
        or parts.fragment
    ):
        raise ValueError(problem)
    return value


def check_user_ids(values: Iterable[int]) -> tuple[int, ...]:
    ids = tuple(values)
    if any(isinstance(user, bool) or user <= 0 for user in ids):
        raise ValueError("is not allowed; expected positive Bitrix24 user ids")
    return tuple(dict.fromkeys(ids))


MAX_ALLOWED_DEPARTMENTS = 100
"""Departments a kassa may admit (each a branch of the company structure, with its
sub-departments): a bound on what one lookup has to compare, far above any real list."""
MAX_NOTIFY_USERS = 50
"""Users notified of a problem: one ``im.notify.system.add`` each, from the REST budget."""


def check_department_ids(values: Iterable[int]) -> tuple[int, ...]:
    ids = tuple(values)
    if any(isinstance(department, bool) or department <= 0 for department in ids):
        raise ValueError("is not allowed; expected positive Bitrix24 department ids")
    unique = tuple(dict.fromkeys(ids))
    if len(unique) > MAX_ALLOWED_DEPARTMENTS:
        raise ValueError(
            f"has {len(unique)} departments; expected at most {MAX_ALLOWED_DEPARTMENTS} "
            "(a department admits its sub-departments too: list the parent instead)"
        )
    return unique


def check_notify_users(values: Iterable[int]) -> tuple[int, ...]:
    unique = check_user_ids(values)
    if len(unique) > MAX_NOTIFY_USERS:
        raise ValueError(
            f"has {len(unique)} users; expected at most {MAX_NOTIFY_USERS} Bitrix24 user ids"
        )
    return unique


REST_RATE_MAX = 250.0
"""Requests per second the budget may be set to: far above any portal (5/s on Enterprise);
the loopback emulator's fast test profile needs more than a real portal."""
REST_BURST_MAX = 250
"""Requests at once: the Enterprise ceiling."""


def check_rest_rate(value: float) -> float:
    """Requests per second for the daemon's REST budget; a whole number or a decimal."""
    if isinstance(value, bool) or not 0 < value <= REST_RATE_MAX:
        raise ValueError(
            f"is not allowed; expected requests per second above 0 and at most "
            f"{REST_RATE_MAX:g}, e.g. 1.8 (2/s portals), 0.4 for 4 kassas behind one address"
        )
    return float(value)


def check_rest_burst(value: int) -> int:
    """Requests the budget lets out at once."""
    if isinstance(value, bool) or not 1 <= value <= REST_BURST_MAX:
        raise ValueError(
            f"is not allowed; expected a whole number of requests from 1 to {REST_BURST_MAX}, "
            "e.g. 40 (portals with a burst of 50)"
        )
    return int(value)


class BitrixConfig(SettingsSection):
    portal: str | None = None
    """Portal base URL, e.g. https://example.bitrix24.ru"""
    client_id: str | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    webhook: SecretStr | None = None
    token_url: str = "https://oauth.bitrix.info/oauth/token/"
    allowed_users: tuple[int, ...] = ()
    allowed_departments: tuple[int, ...] = ()
    """Users of these departments (and of their sub-departments) may create jobs too."""
    notify_users: tuple[int, ...] = ()
    """Who hears of the kassa's problems; empty: the admin who paired it."""
    rest_rate: float = DEFAULT_RATE
    """The REST budget's requests per second (the portal drains 2/s, Enterprise 5/s)."""
    rest_burst: int = DEFAULT_BURST
    """The REST budget's requests at once (the portal's ceiling is 50, Enterprise 250)."""

    _portal = field_validator("portal")(optional(check_portal_url))
    _token_url = field_validator("token_url")(check_http_url)
    _users = field_validator("allowed_users")(check_user_ids)
    _departments = field_validator("allowed_departments")(check_department_ids)
    _notify_users = field_validator("notify_users")(check_notify_users)
    _rest_rate = field_validator("rest_rate")(check_rest_rate)
    _rest_burst = field_validator("rest_burst")(check_rest_burst)

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_webhook_url(value.get_secret_value())
        return value
