"""The reply sender of kind ``b24chat``: a job's outcome back into the Bitrix24 dialog.

Target (contracts.md): ``{"kind": "b24chat", "bot_id": <int>, "dialog_id": "<str>"}``, and
optionally ``"message_id"`` (a message of that dialog from before the reply, e.g. the
confirming one: where the look for an earlier send starts).

What is sent — one message: with a QR code, ``imbot.v2.File.upload`` of the PNG whose
``message`` is the rendered summary, the FNS check link and the trace line; without one
(a refusal), ``Chat.Message.send`` of the text and the trace line.

Where the delivery key lives: the message's **last line**, ``ref <key>`` in small grey
type (``[size=9][color=#9aa0a6]…``). It is the one place that survives on both paths:
``File.upload`` takes no ``templateId`` and the platform gives a bot no other field of its
own. A text-only send also carries ``templateId`` = uuid5(key) (the message's ``uuid``).

:meth:`B24ChatSender.find_sent` reads the dialog around an anchor with
``Chat.Message.getContext`` (±50 messages, a few pages) and looks for the bot's message
with that line or uuid. The anchor is the target's ``message_id``, else the newest message
the bot has seen in the dialog (saved in ``b24bot.json``). ``getContext`` is allowed only to
``personal`` and ``supervisor`` bots; a ``bot`` cannot look, and the reply is sent again.
"""

from __future__ import annotations

import logging
from typing import Any

from kassa_appliance.bitrix.errors import TEMPORARY_ERRORS, AccessDenied, BitrixError, NotFound
from kassa_appliance.channels.b24bot.api import BotApi
from kassa_appliance.channels.b24bot.state import BotState, BotStateFile
from kassa_appliance.channels.b24bot.transport import image_name, template_id
from kassa_appliance.channels.conversation.reply_render import Render, Rendered, default_render
from kassa_appliance.channels.delivery.protocol import (
    Delivery,
    DeliveryFailed,
    DeliveryRetry,
    Outcome,
)

log = logging.getLogger(__name__)

KIND = "b24chat"
LOOK_PAGES = 4
READING_TYPES = frozenset({"personal", "supervisor"})
RETRY_AFTER_BOT_LOST = 60.0
RETRY_AFTER_UNREGISTERED = 5.0


def trace_line(key: str) -> str:
    return f"[size=9][color=#9aa0a6]ref {key}[/color][/size]"


def reply_text(rendered: Rendered, key: str) -> str:
    parts = [rendered.text.rstrip()]
    if rendered.check_url and rendered.check_url not in rendered.text:
        parts.append(f"[url={rendered.check_url}]Чек на сайте ФНС[/url]")
    parts.append(trace_line(key))
    return "\n".join(parts)


class B24ChatSender:
    kind = KIND

    def __init__(
        self,
        api: BotApi,
        state: BotState,
        store: BotStateFile,
        *,
        bot_type: str,
        render: Render | None = None,
    ) -> None:
        self.api = api
        self.state = state
        self.store = store
        self.bot_type = bot_type
        self._render = render

    def render(self, outcome: Outcome) -> Rendered:
        if self._render is None:
            self._render = default_render()
        return self._render(outcome)

    def _dialog(self, delivery: Delivery) -> str:
        if not self.api.bot_id:
            raise DeliveryRetry("the chat bot is not registered yet", RETRY_AFTER_UNREGISTERED)
        dialog = delivery.target.get("dialog_id")
        if not isinstance(dialog, str | int) or not str(dialog):
            raise DeliveryFailed("the b24chat target has no dialog_id")
        return str(dialog)

    async def send(self, delivery: Delivery) -> str:
        dialog = self._dialog(delivery)
        rendered = self.render(delivery.outcome)
        text = reply_text(rendered, delivery.key)
        try:
            if rendered.png:
                message_id = await self.api.upload(
                    dialog, image_name(delivery.key), rendered.png, text
                )
            else:
                fields = {"message": text, "templateId": template_id(delivery.key)}
                message_id = await self.api.send(dialog, {**fields, "urlPreview": False})
        except BitrixError as error:
            raise _delivery_error(error, dialog) from None
        self.state.note_message(dialog, message_id)
        self.store.save(self.state)
        return str(message_id)

    async def find_sent(self, delivery: Delivery) -> str | None:
        dialog = self._dialog(delivery)
        if self.bot_type not in READING_TYPES:
            log.warning(
                "b24chat %s: a %s bot cannot read its dialog back; sending again",
                delivery.key,
                self.bot_type,
            )
            return None
        anchor = _int(delivery.target.get("message_id")) or self.state.last_message.get(dialog)
        if anchor is None:
            return None
        first = await self._window(anchor, dialog)
        if first is None:
            return None  # the anchor is gone: nothing to look around
        found = self._find(first, delivery.key)
        window = first
        for _ in range(LOOK_PAGES - 1):  # forward first: the reply came after the anchor
            if found is not None or not window.get("hasNextPage") or not window["messages"]:
                break
            window = await self._window(int(window["messages"][-1]["id"]), dialog) or {}
            found = self._find(window, delivery.key)
        if found is None and first.get("hasPrevPage") and first["messages"]:
            window = await self._window(int(first["messages"][0]["id"]), dialog) or {}
            found = self._find(window, delivery.key)
        return found

    async def _window(self, center: int, dialog: str) -> dict[str, Any] | None:
        try:
            window = await self.api.context(center)
        except NotFound:
            return None
        except BitrixError as error:
            raise _delivery_error(error, dialog) from None
        messages = [m for m in window.get("messages") or [] if isinstance(m, dict)]
        return {**window, "messages": [m for m in messages if _int(m.get("id"))]}

    def _find(self, window: dict[str, Any], key: str) -> str | None:
        trace = trace_line(key)
        uuid = template_id(key)
        for message in window.get("messages") or []:
            if message.get("authorId") == self.api.bot_id and (
                trace in str(message.get("text") or "") or message.get("uuid") == uuid
            ):
                return str(message["id"])
        return None


def _delivery_error(error: BitrixError, dialog: str) -> Exception:
    if isinstance(error, TEMPORARY_ERRORS):
        return DeliveryRetry(f"Bitrix24 did not take the reply now: {error.code}")
    if error.code == "BOT_NOT_FOUND":
        return DeliveryRetry(
            "the chat bot is not registered (it is being registered again)", RETRY_AFTER_BOT_LOST
        )
    if isinstance(error, AccessDenied) or error.code == "ACCESS_DENIED":
        return DeliveryFailed(
            f"the bot may not write in dialog {dialog} (removed from the chat or blocked"
            f" by the user): {error.code}"
        )
    return DeliveryFailed(f"Bitrix24 refused the reply in dialog {dialog}: {error.code}")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
