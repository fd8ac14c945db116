"""The shared vocabulary of the emulated REST methods: errors, callers and answers.

Owns ``ApiError`` (Bitrix24's HTTP status plus ``{"error", "error_description"}``
shape), ``Caller``, ``Answer``, the ``Handler`` signature, ``PublishedEvent`` and the
``PushBackend`` protocol the REST side needs from the push server. Imports nothing
else from ``rest*`` so every method module can depend on it without cycles.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from kassa_appliance.testbeds.bitrix24.state import User


class PushBackend(Protocol):
    """What the REST side needs from the push server (``emulator/push.py`` PushServer)."""

    def channel_config(self, user_id: int, *, client_id: str = ...) -> dict[str, Any]:
        """The ``result`` of ``pull.application.config.get`` for this app and user."""
        ...

    async def publish_app_event(
        self,
        command: str,
        params: dict[str, Any],
        *,
        module_id: str = ...,
        user_ids: Iterable[int] | None = ...,
        client_id: str = ...,
    ) -> str:
        """Deliver an app event to the shared channel (None) or the users' channels."""
        ...


class ApiError(Exception):
    def __init__(self, status: int, code: str, description: str, **extra: Any) -> None:
        super().__init__(f"{code}: {description}")
        self.status = status
        self.code = code
        self.description = description
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "error_description": self.description, **self.extra}


@dataclass(frozen=True)
class Caller:
    user: User
    application: bool
    """True for OAuth application tokens, False for inbound webhooks."""


@dataclass
class PublishedEvent:
    user_ids: list[int] | None
    message: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    result: Any
    next: int | None = None
    total: int | None = None


Handler = Callable[[Caller, dict[str, Any]], Awaitable[Answer]]
