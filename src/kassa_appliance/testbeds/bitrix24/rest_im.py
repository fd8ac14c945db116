"""The emulated ``im.notify.system.add`` (b24restdocs
``chats/notifications/im-notify-system-add.md``): a system notification to one user,
recorded in :attr:`NotificationLog.sent` for tests to look at. ``USER_ID`` must be a user
of the portal and ``MESSAGE`` non-empty (trimmed); a notification with a ``TAG`` already
used replaces the earlier ones with that tag, as the docs say. Bound into the emulator's
method table by :func:`im_handlers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kassa_appliance.testbeds.bitrix24.rest_types import Answer, ApiError, Caller, Handler
from kassa_appliance.testbeds.bitrix24.state import PortalState


@dataclass(frozen=True)
class Notification:
    id: int
    user_id: int
    message: str
    tag: str | None
    sender: int
    """The user whose token sent it."""


@dataclass
class NotificationLog:
    sent: list[Notification] = field(default_factory=list)
    """Every notification sent, in order (replaced ones too)."""
    shown: dict[int, Notification] = field(default_factory=dict)
    """What the users still see: by id, without the ones a newer tag replaced."""


def im_handlers(state: PortalState, log: NotificationLog) -> dict[str, Handler]:
    async def system_add(caller: Caller, params: dict[str, Any]) -> Answer:
        try:
            user_id = int(params.get("USER_ID") or 0)
        except (TypeError, ValueError):
            raise ApiError(400, "USER_ID_EMPTY", "Recipient is not specified") from None
        if user_id not in state.users:
            raise ApiError(400, "USER_ID_EMPTY", "Recipient is not specified")
        message = str(params.get("MESSAGE") or "").strip()
        if not message:
            raise ApiError(400, "MESSAGE_EMPTY", "Message can't be empty")
        tag = str(params["TAG"]) if params.get("TAG") else None
        notification = Notification(len(log.sent) + 1, user_id, message, tag, caller.user.id)
        log.sent.append(notification)
        if tag is not None:
            for old in [n for n in log.shown.values() if n.tag == tag]:
                del log.shown[old.id]
        log.shown[notification.id] = notification
        return Answer(notification.id)

    return {"im.notify.system.add": system_add}
