"""The ``maxbot`` section of the configuration: the MAX bot this appliance hosts.

Off by default. The conversation settings — ``cashiers`` (the allow-list: MAX user ids,
each mapped to the cashier name and INN of tags 1021/1203; anyone else is refused),
``kassas``, ``vat``… — come from
:class:`~kassa_appliance.channels.conversation.settings.ConversationSettings`. The rules
here run on every load of ``config.json`` and on every ``snap set`` (the keys are in
:mod:`kassa_appliance.appliance.hooks.keys_maxbot`).
"""

from __future__ import annotations

from pydantic import SecretStr, field_validator, model_validator

from kassa_appliance.channels.conversation.access import Cashier
from kassa_appliance.channels.conversation.settings import ConversationSettings
from kassa_appliance.setting_checks import checked_url, is_loopback

DEFAULT_API_URL = "https://platform-api2.max.ru"
POLL_TIMEOUT_MIN = 1
POLL_TIMEOUT_MAX = 90
"""``GET /updates`` ``timeout``: 0–90 s in the schema; 0 would turn long polling into busy
polling, so at least 1."""


def check_api_url(value: str, *, allow_loopback_http: bool = True) -> str:
    """The Bot API base URL: ``https://host[:port]`` (``http://`` only for a loopback
    emulator, and not from ``snap set``), without a trailing slash."""
    example = f"expected e.g. {DEFAULT_API_URL}"
    parts = checked_url(value, ("http", "https"), "is not an https URL", example)
    plain_ok = allow_loopback_http and parts.scheme == "http" and is_loopback(parts.hostname or "")
    if parts.scheme != "https" and not plain_ok:
        raise ValueError(f"is not an https URL; {example}")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"is not a base URL; {example} (no query, no user name)")
    return value.rstrip("/")


def check_poll_timeout(value: int) -> int:
    if isinstance(value, bool) or not POLL_TIMEOUT_MIN <= value <= POLL_TIMEOUT_MAX:
        raise ValueError(
            f"is not allowed; expected whole seconds from {POLL_TIMEOUT_MIN} to {POLL_TIMEOUT_MAX}"
        )
    return value


class MaxBotConfig(ConversationSettings):
    enabled: bool = False
    token: SecretStr | None = None
    """The bot's token from business.max.ru (Чат-боты → настройки); sent only in the
    ``Authorization`` header, never logged."""
    api_url: str = DEFAULT_API_URL
    poll_timeout: int = 30
    """Seconds a ``GET /updates`` long poll is held by MAX."""

    _api_url = field_validator("api_url")(check_api_url)
    _poll_timeout = field_validator("poll_timeout")(check_poll_timeout)

    @field_validator("cashiers")
    @classmethod
    def _max_users_only(cls, value: dict[str, Cashier]) -> dict[str, Cashier]:
        for who in value:
            if not who.isdigit():
                raise ValueError(
                    f"{who!r}: MAX has no departments; expected MAX user ids, "
                    "e.g. 4123456=Мастер Иванов И.И.:500100732259"
                )
        return value

    @model_validator(mode="after")
    def _token_when_enabled(self) -> MaxBotConfig:
        if self.enabled and self.token is None:
            raise ValueError(
                "maxbot.enabled is true but maxbot.token is not set; expected the bot's "
                "token from business.max.ru"
            )
        return self
