"""Test controls of the MAX emulator, under ``/_emulator/``: what a user does in the MAX app
(writes, presses Start or a button, blocks the bot), what the tests read back (the messages
in a chat, callback answers, the recorded traffic) and the faults they switch on.

    POST   /_emulator/users/{user_id}/messages  {"text", "first_name"?}  → {chat_id, mid, marker}
    POST   /_emulator/users/{user_id}/start     {"payload"?}             → {chat_id, marker}
    POST   /_emulator/users/{user_id}/press     {"payload", "mid"?}      → {callback_id, marker}
    POST   /_emulator/users/{user_id}/block     {"blocked": true|false}
    POST   /_emulator/updates/{marker}/redeliver                         → {marker} (a copy)
    DELETE /_emulator/chats/{chat_id}                                    (the chat is deleted)
    GET    /_emulator/chats/{chat_id}/messages                           → {messages} oldest first
    GET    /_emulator/answers                                            → {answers}
    GET    /_emulator/traffic · DELETE /_emulator/traffic                → {exchanges}
    GET    /_emulator/faults · POST /_emulator/faults {field: value}     (see state.Faults)
    POST   /_emulator/token {"token"}                                    (the valid token changes)
    GET    /_emulator/state                                              → {committed, next_marker}

An image a message carries is downloaded from its ``payload.url`` (``/_files/<token>``).
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any

from aiohttp import web

from kassa_appliance.testbeds.maxapi.state import JsonDict, MaxState, now_ms


def _bad(message: str, status: int = 400) -> web.Response:
    return web.json_response({"code": "emulator.bad.request", "message": message}, status=status)


async def _body(request: web.Request) -> JsonDict:
    if not request.can_read_body:
        return {}
    try:
        data = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="body is not JSON") from None
    if not isinstance(data, dict):
        raise web.HTTPBadRequest(text="body must be a JSON object")
    return data


def _user_id(request: web.Request) -> int:
    try:
        return int(request.match_info["user_id"])
    except ValueError:
        raise web.HTTPBadRequest(text="user id must be a number") from None


class Controls:
    def __init__(self, state: MaxState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post("/_emulator/users/{user_id}/messages", self.user_writes),
            web.post("/_emulator/users/{user_id}/start", self.user_starts),
            web.post("/_emulator/users/{user_id}/press", self.user_presses),
            web.post("/_emulator/users/{user_id}/block", self.user_blocks),
            web.post("/_emulator/updates/{marker}/redeliver", self.redeliver),
            web.delete("/_emulator/chats/{chat_id}", self.delete_chat),
            web.get("/_emulator/chats/{chat_id}/messages", self.chat_messages),
            web.get("/_emulator/answers", self.answers),
            web.get("/_emulator/traffic", self.traffic),
            web.delete("/_emulator/traffic", self.clear_traffic),
            web.get("/_emulator/faults", self.get_faults),
            web.post("/_emulator/faults", self.set_faults),
            web.post("/_emulator/token", self.set_token),
            web.get("/_emulator/state", self.get_state),
        ]

    async def user_writes(self, request: web.Request) -> web.Response:
        body = await _body(request)
        text = body.get("text")
        if not isinstance(text, str) or not text:
            return _bad("'text' is required")
        chat = self.state.dialog_with(
            _user_id(request), str(body.get("first_name", "")), str(body.get("last_name", ""))
        )
        message = self.state.add_message(chat, from_bot=False, text=text, attachments=None)
        marker = self.state.push_update(
            {
                "update_type": "message_created",
                "timestamp": now_ms(),
                "message": message,
                "user_locale": "ru",
            }
        )
        return web.json_response(
            {"chat_id": chat.chat_id, "mid": message["body"]["mid"], "marker": marker}
        )

    async def user_starts(self, request: web.Request) -> web.Response:
        body = await _body(request)
        chat = self.state.dialog_with(_user_id(request), str(body.get("first_name", "")))
        update: JsonDict = {
            "update_type": "bot_started",
            "timestamp": now_ms(),
            "chat_id": chat.chat_id,
            "user": chat.user,
            "payload": body.get("payload"),
            "user_locale": "ru",
        }
        return web.json_response(
            {"chat_id": chat.chat_id, "marker": self.state.push_update(update)}
        )

    async def user_presses(self, request: web.Request) -> web.Response:
        body = await _body(request)
        payload = body.get("payload")
        if not isinstance(payload, str):
            return _bad("'payload' (the button's payload) is required")
        chat = self.state.dialog_with(_user_id(request))
        wanted_mid = body.get("mid")
        for message in reversed(chat.messages):
            if wanted_mid is not None and message["body"]["mid"] != wanted_mid:
                continue
            if message["sender"]["user_id"] == chat.user["user_id"]:
                continue
            if payload in _callback_payloads(message):
                break
        else:
            return _bad(f"no message of the bot in chat {chat.chat_id} has that button", 404)
        callback_id = secrets.token_urlsafe(48)
        self.state.callbacks[callback_id] = (chat.chat_id, message["body"]["mid"], chat.user)
        update = {
            "update_type": "message_callback",
            "timestamp": now_ms(),
            "callback": {
                "timestamp": now_ms(),
                "callback_id": callback_id,
                "payload": payload,
                "user": chat.user,
            },
            "message": message,
            "user_locale": "ru",
        }
        marker = self.state.push_update(update)
        return web.json_response({"callback_id": callback_id, "marker": marker})

    async def user_blocks(self, request: web.Request) -> web.Response:
        body = await _body(request)
        chat = self.state.dialog_with(_user_id(request))
        chat.status = "suspended" if body.get("blocked", True) else "active"
        return web.json_response({"chat_id": chat.chat_id, "status": chat.status})

    async def redeliver(self, request: web.Request) -> web.Response:
        """MAX gives an update again (a commit it lost): the same update, a new marker."""
        wanted = int(request.match_info["marker"])
        update = next((u for seq, u in self.state.updates if seq == wanted), None)
        if update is None:
            return _bad("no update with that marker", 404)
        return web.json_response({"marker": self.state.push_update(update)})

    async def delete_chat(self, request: web.Request) -> web.Response:
        chat = self.state.chats.get(int(request.match_info["chat_id"]))
        if chat is None:
            return _bad("no such chat", 404)
        chat.status = "removed"
        return web.json_response({"chat_id": chat.chat_id, "status": chat.status})

    async def chat_messages(self, request: web.Request) -> web.Response:
        chat = self.state.chats.get(int(request.match_info["chat_id"]))
        if chat is None:
            return _bad("no such chat", 404)
        return web.json_response({"messages": chat.messages})

    async def answers(self, request: web.Request) -> web.Response:
        return web.json_response({"answers": self.state.answers})

    async def traffic(self, request: web.Request) -> web.Response:
        return web.json_response({"exchanges": [e.as_json() for e in self.state.traffic]})

    async def clear_traffic(self, request: web.Request) -> web.Response:
        self.state.traffic.clear()
        return web.json_response({"exchanges": []})

    async def get_faults(self, request: web.Request) -> web.Response:
        return web.json_response(dataclasses.asdict(self.state.faults))

    async def set_faults(self, request: web.Request) -> web.Response:
        body = await _body(request)
        faults = self.state.faults
        names = {f.name: f.type for f in dataclasses.fields(faults)}
        for name, value in body.items():
            if name not in names:
                return _bad(f"unknown fault {name!r}; expected one of {', '.join(names)}")
            current: Any = getattr(faults, name)
            if isinstance(current, bool):
                setattr(faults, name, bool(value))
            elif isinstance(current, int):
                setattr(faults, name, int(value))
            else:
                setattr(faults, name, float(value))
        return web.json_response(dataclasses.asdict(faults))

    async def set_token(self, request: web.Request) -> web.Response:
        body = await _body(request)
        token = body.get("token")
        if not isinstance(token, str) or not token:
            return _bad("'token' is required")
        self.state.token = token
        return web.json_response({"ok": True})

    async def get_state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"committed": self.state.committed, "next_marker": self.state.next_marker}
        )


def _callback_payloads(message: JsonDict) -> set[str]:
    found: set[str] = set()
    for attachment in message["body"].get("attachments") or []:
        if attachment.get("type") != "inline_keyboard":
            continue
        for row in attachment["payload"]["buttons"]:
            found.update(b["payload"] for b in row if b.get("type") == "callback")
    return found
