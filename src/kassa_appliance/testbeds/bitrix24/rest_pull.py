"""The ``pull.application.*`` methods: push channel config and app events.

Owns ``pull.application.config.get`` (delegated to the ``PushBackend``) and
``pull.application.event.add`` (COMMAND/MODULE_ID/PARAMS/USER_ID checks, recording
into ``published`` and forwarding to the push server), plus the application-only
auth rule these methods apply. Mixed into ``rest.RestApi``, which supplies ``state``,
``push`` and ``published``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from kassa_appliance.testbeds.bitrix24.rest_types import (
    Answer,
    ApiError,
    Caller,
    PublishedEvent,
    PushBackend,
)
from kassa_appliance.testbeds.bitrix24.state import PortalState

_COMMAND = re.compile(r"^[\d\w:_|.\-]+$")
_MODULE_ID = re.compile(r"^[a-z0-9._]+$")


class PullMethods:
    """Handlers for ``pull.application.*`` (bound into ``RestApi``'s method table)."""

    state: PortalState
    push: PushBackend | None
    published: list[PublishedEvent]

    async def _pull_config(self, caller: Caller, params: dict[str, Any]) -> Answer:
        _require_application(caller)
        if self.push is None:
            raise ApiError(500, "SERVER_ERROR", "Push & Pull server is not configured")
        return Answer(self.push.channel_config(caller.user.id, client_id=self.state.client_id))

    async def _pull_event_add(self, caller: Caller, params: dict[str, Any]) -> Answer:
        _require_application(caller)
        command = str(params.get("COMMAND") or "")
        if not _COMMAND.match(command):
            raise ApiError(400, "COMMAND_ERROR", "Command format error")
        module_id = str(params.get("MODULE_ID") or "application")
        if not _MODULE_ID.match(module_id):
            raise ApiError(400, "MODULE_ID_ERROR", "Module ID format error")
        raw_params = params.get("PARAMS", {})
        if isinstance(raw_params, str):
            try:
                raw_params = json.loads(raw_params) if raw_params else {}
            except ValueError:
                raise ApiError(400, "PARAMS_ERROR", "Params format error") from None
        if not isinstance(raw_params, dict | list):
            raise ApiError(400, "PARAMS_ERROR", "Params format error")
        user_ids = _user_ids(params.get("USER_ID"))
        if user_ids is not None and not caller.user.admin and user_ids != [caller.user.id]:
            raise ApiError(
                400, "USER_ID_ACCESS_ERROR", "Only admin can send notifications to other channels"
            )
        event_params = (
            raw_params
            if isinstance(raw_params, dict)
            else {str(i): v for i, v in enumerate(raw_params)}
        )
        message = {"module_id": module_id, "command": command, "params": event_params}
        self.published.append(PublishedEvent(user_ids, message))
        if self.push is not None:
            await self.push.publish_app_event(
                command,
                event_params,
                module_id=module_id,
                user_ids=user_ids,
                client_id=self.state.client_id,
            )
        return Answer(True)


def _user_ids(raw: Any) -> list[int] | None:
    if raw in (None, ""):
        return None
    values = raw if isinstance(raw, list) else [raw]
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError):
        raise ApiError(400, "USER_ID_ACCESS_ERROR", "USER_ID must be an integer") from None


def _require_application(caller: Caller) -> None:
    """pull.application.* answer a webhook (or any non-application) call like the portal."""
    if not caller.application:
        raise ApiError(
            403,
            "WRONG_AUTH_TYPE",
            "Get access to application config available only for application authorization.",
        )
