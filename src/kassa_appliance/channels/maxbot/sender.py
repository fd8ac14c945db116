"""The reply sender of kind ``maxchat``: a job's outcome back into the MAX chat.

Target (contracts.md): ``{"kind": "maxchat", "chat_id": "<str>"}``.

What is sent — one message (one ``POST /messages``, so it arrives whole or not at all): the
rendered summary as text, the QR code as an image (the upload flow, with the retries on
``attachment.not.ready``), a link button «Чек на сайте ФНС» to the check, and as the text's
**last line** the trace ``ref <key>``. The trace is in the text because the text is what
``GET /messages`` always gives back, whatever MAX does with attachments and keyboards.

:meth:`MaxChatSender.find_sent` reads the chat's latest 100 messages (``GET /messages``)
and looks for the bot's message whose last line is that trace. A chat where more than 100
messages were written after the send and before the restart would get the reply again.

Failures: the user blocked the bot (403 ``chat.denied``) or the chat is gone (404) →
:class:`DeliveryFailed`; a message MAX refuses as malformed (400) → DeliveryFailed with
MAX's reason; a rejected token, 429, 5xx, the network → :class:`DeliveryRetry`.
"""

from __future__ import annotations

from typing import Any

from kassa_appliance.channels.conversation.reply_render import Render, Rendered, default_render
from kassa_appliance.channels.delivery.protocol import (
    Delivery,
    DeliveryFailed,
    DeliveryRetry,
    Outcome,
)
from kassa_appliance.channels.maxbot.client import MaxClient
from kassa_appliance.channels.maxbot.errors import MaxApiError
from kassa_appliance.channels.maxbot.transport import TEXT_LIMIT, fit_text, message_id_of

KIND = "maxchat"
LOOK_COUNT = 100
CHECK_BUTTON = "Чек на сайте ФНС"
RETRY_AFTER_TOKEN = 300.0


def trace_line(key: str) -> str:
    return f"ref {key}"


def reply_text(text: str, key: str) -> str:
    trace = trace_line(key)
    return f"{fit_text(text.rstrip(), TEXT_LIMIT - len(trace) - 1)}\n{trace}"


def has_trace(message: dict[str, Any], key: str) -> bool:
    sender = message.get("sender")
    body = message.get("body")
    if not isinstance(sender, dict) or not sender.get("is_bot") or not isinstance(body, dict):
        return False
    text = body.get("text")
    return isinstance(text, str) and text.rstrip().rsplit("\n", 1)[-1] == trace_line(key)


def _as_delivery_error(error: MaxApiError) -> Exception:
    if error.token_rejected:
        return DeliveryRetry(
            "MAX rejected the bot token; set the right one with snap set kassa-appliance "
            "maxbot.token=…",
            RETRY_AFTER_TOKEN,
        )
    if error.chat_gone:
        reason = (
            "the user blocked the bot" if error.status == 403 else "the MAX chat no longer exists"
        )
        return DeliveryFailed(f"{reason} ({error.code}: {error.message})")
    if error.retryable or error.not_ready or error.status == 0:
        return DeliveryRetry(str(error))
    return DeliveryFailed(f"MAX refused the reply: {error}")


class MaxChatSender:
    kind = KIND

    def __init__(self, client: MaxClient, *, render: Render | None = None) -> None:
        self.client = client
        self._render = render

    def render(self, outcome: Outcome) -> Rendered:
        if self._render is None:
            self._render = default_render()
        return self._render(outcome)

    @staticmethod
    def _chat(delivery: Delivery) -> str:
        chat_id = delivery.target.get("chat_id")
        text = str(chat_id) if isinstance(chat_id, str | int) else ""
        if not text.lstrip("-").isdigit():
            raise DeliveryFailed("the maxchat target has no chat_id (a MAX chat number)")
        return text

    async def send(self, delivery: Delivery) -> str:
        chat_id = self._chat(delivery)
        rendered = self.render(delivery.outcome)
        attachments: list[dict[str, Any]] = []
        try:
            if rendered.png:
                token = await self.client.upload_image(rendered.png, f"{delivery.job_id[:40]}.png")
                attachments.append({"type": "image", "payload": {"token": token}})
            if rendered.check_url and len(rendered.check_url) <= 2048:
                button = {"type": "link", "text": CHECK_BUTTON, "url": rendered.check_url}
                attachments.append({"type": "inline_keyboard", "payload": {"buttons": [[button]]}})
            body: dict[str, Any] = {"text": reply_text(rendered.text, delivery.key)}
            if attachments:
                body["attachments"] = attachments
            message = await self.client.send_message(chat_id, body)
        except MaxApiError as error:
            raise _as_delivery_error(error) from None
        return message_id_of(message) or f"chat {chat_id}"

    async def find_sent(self, delivery: Delivery) -> str | None:
        chat_id = self._chat(delivery)
        try:
            messages = await self.client.get_messages(chat_id, LOOK_COUNT)
        except MaxApiError as error:
            if error.chat_gone and not error.token_rejected:
                return None  # send() then records why it failed for good
            raise DeliveryRetry(f"could not read the MAX chat: {error}") from None
        for message in messages:
            if has_trace(message, delivery.key):
                return message_id_of(message) or f"chat {chat_id}"
        return None
