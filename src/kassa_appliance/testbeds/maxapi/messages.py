"""Outgoing message bodies in the MAX emulator: ``AttachmentRequest`` → ``Attachment``.

Checked like MAX checks them (max-notes §3.2, §3.3, §4.2): an image by the token of an
upload (``payload.token`` or ``payload.photos``), refused with 400 ``attachment.not.ready``
while the upload is "being processed"; at most one inline keyboard, ≤ 30 rows of ≤ 7
buttons, button text 1–128 characters, a callback payload ≤ 1024, a link ≤ 2048.
"""

from __future__ import annotations

import time
from typing import Any

from kassa_appliance.testbeds.maxapi.state import Chat, JsonDict, MaxState, Upload

MAX_ATTACHMENTS = 12
MAX_ROWS = 30
MAX_ROW_BUTTONS = 7
BUTTON_TYPES = ("callback", "link", "message", "request_contact", "clipboard")


class BadRequest(Exception):
    """Answered as the schema's ``Error`` with this status and code."""

    def __init__(self, message: str, status: int = 400, code: str = "proto.payload") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


def _upload_of(state: MaxState, payload: Any) -> Upload:
    if not isinstance(payload, dict):
        raise BadRequest("No `photos`, `url` or `token` provided. Check payload.")
    token = payload.get("token")
    photos = payload.get("photos")
    if token is None and isinstance(photos, dict) and photos:
        first = next(iter(photos.values()))
        token = first.get("token") if isinstance(first, dict) else None
    if payload.get("url") is not None and token is None:
        raise BadRequest("External image URLs are not emulated", code="attachment.invalid")
    if not isinstance(token, str) or not token:
        raise BadRequest("No `photos`, `url` or `token` provided. Check payload.")
    upload = state.uploads_by_token.get(token)
    if upload is None:
        raise BadRequest("Attachment token is unknown", code="attachment.invalid")
    if time.monotonic() - upload.uploaded_at < state.faults.attachment_ready_after:
        raise BadRequest(
            "Key: errors.process.attachment.file.not.processed", code="attachment.not.ready"
        )
    return upload


def _button(raw: Any, where: str) -> JsonDict:
    if not isinstance(raw, dict):
        raise BadRequest(f"{where} must be a Button object")
    kind, text = raw.get("type"), raw.get("text")
    if kind not in BUTTON_TYPES:
        raise BadRequest(f"{where}.type must be one of {', '.join(BUTTON_TYPES)}")
    if not isinstance(text, str) or not 1 <= len(text) <= 128:
        raise BadRequest(f"{where}.text must be 1 to 128 characters")
    button: JsonDict = {"type": kind, "text": text}
    if kind in ("callback", "clipboard"):
        payload = raw.get("payload")
        if not isinstance(payload, str) or len(payload) > 1024:
            raise BadRequest(f"{where}.payload must be a string of at most 1024 characters")
        button["payload"] = payload
    if kind == "link":
        url = raw.get("url")
        if not isinstance(url, str) or not url or len(url) > 2048:
            raise BadRequest(f"{where}.url must be a URL of at most 2048 characters")
        button["url"] = url
    return button


def _keyboard(payload: Any) -> JsonDict:
    rows = payload.get("buttons") if isinstance(payload, dict) else None
    if not isinstance(rows, list) or not rows or len(rows) > MAX_ROWS:
        raise BadRequest(f"Keyboard must have 1 to {MAX_ROWS} rows of buttons")
    checked: list[list[JsonDict]] = []
    for row_index, row in enumerate(rows):
        if not isinstance(row, list) or not 1 <= len(row) <= MAX_ROW_BUTTONS:
            raise BadRequest(f"Keyboard row {row_index} must have 1 to {MAX_ROW_BUTTONS} buttons")
        checked.append([_button(b, f"buttons[{row_index}][{i}]") for i, b in enumerate(row)])
    return {"buttons": checked}


def outgoing_attachments(state: MaxState, raw: Any, base_url: str) -> list[JsonDict] | None:
    """The attachments a sent message shows, or None; BadRequest says what is wrong."""
    if raw is None:
        return None
    if not isinstance(raw, list) or len(raw) > MAX_ATTACHMENTS:
        raise BadRequest(f"Field 'attachments' must be a list of at most {MAX_ATTACHMENTS}")
    result: list[JsonDict] = []
    keyboards = 0
    for index, item in enumerate(raw):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "image":
            upload = _upload_of(state, item.get("payload"))
            result.append(
                {
                    "type": "image",
                    "payload": {
                        "photo_id": upload.photo_id,
                        "token": upload.token,
                        "url": f"{base_url}/_files/{upload.token}",
                    },
                }
            )
        elif kind == "inline_keyboard":
            keyboards += 1
            if keyboards > 1:
                raise BadRequest("A message may carry only one inline keyboard")
            result.append({"type": "inline_keyboard", "payload": _keyboard(item.get("payload"))})
        else:
            raise BadRequest(f"attachments[{index}].type is not emulated (image, inline_keyboard)")
    return result


def answer_keyboard_message(state: MaxState, chat: Chat, mid: str, raw: Any, base_url: str) -> None:
    """``POST /answers`` with ``message``: the keyboard's message is replaced."""
    if not isinstance(raw, dict):
        raise BadRequest("Field 'message' must be a NewMessageBody object")
    found = state.find_message(mid)
    if found is None:
        raise BadRequest("The message with the keyboard is gone", status=404, code="not.found")
    _, message = found
    text = raw.get("text")
    if text is not None and (not isinstance(text, str) or len(text) > 4000):
        raise BadRequest("Field 'message.text' must be a string of at most 4000 characters")
    if text is not None:
        message["body"]["text"] = text
    if "attachments" in raw and raw["attachments"] is not None:
        message["body"]["attachments"] = outgoing_attachments(state, raw["attachments"], base_url)
