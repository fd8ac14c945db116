"""The Bot API side of the MAX emulator: ``/me``, ``/updates``, ``/messages``, ``/answers``,
``/uploads``, ``/chats/{id}``, and the upload host (``/_upload/<id>``, ``/_files/<token>``)
that the upload URL points to, served by the emulator itself on loopback.

Faithful where the daemon depends on it (max-notes §1.3, §2, §3, §4, §6): the raw token in
``Authorization`` (401 ``verify.token`` otherwise, 403 ``deprecated.token`` for the query
parameter), 400 ``attachment.not.ready`` for a while after an upload, 403 ``chat.denied``
when the user blocked the bot, 404 ``chat.not.found`` for a deleted chat, 429 past MAX's
rate limits, and the faults of :class:`~kassa_appliance.testbeds.maxapi.state.Faults`.
Every answer's body is the schema's ``Error`` or the operation's documented result.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from kassa_appliance.inputs import InputRejected, decode_json_bytes
from kassa_appliance.testbeds.maxapi.messages import (
    BadRequest,
    answer_keyboard_message,
    outgoing_attachments,
)
from kassa_appliance.testbeds.maxapi.state import Chat, Exchange, MaxState

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

GLOBAL_RPS = 30
PER_CHAT_PER_SECOND = 2
DROP_DELAY = 0.05
JSON_BODY = web.RequestKey("json_body", bytes)
DROPPED = web.RequestKey("dropped", bool)


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"code": code, "message": message}, status=status)


def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without an answer (recorded as kind ``dropped``, status 0)."""
    request[DROPPED] = True
    if request.transport is not None:
        request.transport.close()
    return web.Response()


def _int_param(request: web.Request, name: str, low: int, high: int, default: int | None) -> Any:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"Parameter '{name}' must be an integer") from None
    if not low <= value <= high:
        raise BadRequest(f"Parameter '{name}' must be between {low} and {high}")
    return value


class BotApi:
    def __init__(self, state: MaxState) -> None:
        self.state = state

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/me", self.me),
            web.get("/updates", self.updates),
            web.post("/messages", self.send_message),
            web.get("/messages", self.get_messages),
            web.post("/answers", self.answer),
            web.post("/uploads", self.get_upload_url),
            web.get("/chats/{chat_id}", self.get_chat),
            web.post("/_upload/{upload_id}", self.upload),
            web.get("/_files/{token}", self.file),
        ]

    # -- the middleware: record, authorise, faults, limits --------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/_emulator"):
            return await handler(request)
        kind = "upload" if request.path.startswith(("/_upload/", "/_files/")) else "api"
        raw = await request.read() if kind == "api" else b""
        recorded: Any = None
        if raw and request.content_type == "application/json":
            try:
                recorded = json.loads(raw)
            except ValueError:
                recorded = {"unparsed": raw[:200].decode("utf-8", "replace")}
        request[JSON_BODY] = raw
        response = await self._guarded(request, handler, kind)
        body: Any = None
        if isinstance(response, web.Response) and response.content_type == "application/json":
            assert isinstance(response.body, bytes)
            body = json.loads(response.body)
        dropped = request.get(DROPPED, False)
        self.state.record(
            Exchange(
                kind="dropped" if dropped else kind,
                method=request.method,
                path=request.path,
                query=list(request.query.items()),
                authorization=request.headers.get("Authorization"),
                request_json=recorded,
                status=0 if dropped else response.status,
                response_json=body,
            )
        )
        return response

    async def _guarded(
        self, request: web.Request, handler: Handler, kind: str
    ) -> web.StreamResponse:
        if kind == "api":
            refused = self._refusal(request)
            if refused is not None:
                return refused
        try:
            return await handler(request)
        except BadRequest as problem:
            return error(problem.status, problem.code, problem.message)
        except web.HTTPNotFound:
            return error(404, "not.found", f"Path {request.path} not found")
        except web.HTTPMethodNotAllowed:
            return error(405, "method.not.allowed", f"Method {request.method} is not allowed")

    def _refusal(self, request: web.Request) -> web.Response | None:
        state = self.state
        if "access_token" in request.query:
            return error(
                403,
                "deprecated.token",
                "Query parameter access_token is deprecated, use Authorization header",
            )
        token = request.headers.get("Authorization")
        if not token:
            return error(401, "verify.token", "Empty access_token")
        if token != state.token:
            return error(401, "verify.token", "Invalid access_token")
        if state.faults.consume("rate_limited"):
            return error(429, "too.many.requests", "The number of requests is exceeded")
        if state.faults.consume("unavailable"):
            return error(503, "service.unavailable", "Service temporarily unavailable")
        limited = state.faults.enforce_rate_limits
        if limited and not state.window.hit("bot", GLOBAL_RPS):
            return error(429, "too.many.requests", "More than 30 requests per second")
        return None

    def _json(self, request: web.Request) -> Any:
        raw: bytes = request[JSON_BODY]
        if not raw:
            raise BadRequest("Request body is required")
        try:
            return decode_json_bytes(raw, "request body")
        except InputRejected as problem:
            raise BadRequest(str(problem)) from None

    def _chat_for_send(self, request: web.Request, what: str) -> Chat:
        chat_id = _int_param(request, "chat_id", -(2**63), 2**63 - 1, None)
        user_id = _int_param(request, "user_id", 0, 2**63 - 1, None)
        chat: Chat | None = None
        if chat_id is not None:
            chat = self.state.chats.get(chat_id)
        elif user_id is not None:
            chat = next(
                (c for c in self.state.chats.values() if c.user["user_id"] == user_id), None
            )
        else:
            raise BadRequest("Parameter 'chat_id' or 'user_id' is required")
        return self._usable(chat, what)

    def _usable(self, chat: Chat | None, what: str) -> Chat:
        if chat is None or chat.status == "removed":
            raise BadRequest("Chat not found", status=404, code="chat.not.found")
        if chat.status == "suspended":
            raise BadRequest("Bot was stopped by user", status=403, code="chat.denied")
        limited = self.state.faults.enforce_rate_limits
        if limited and not self.state.window.hit(f"{what}:{chat.chat_id}", PER_CHAT_PER_SECOND):
            raise BadRequest(
                "More than 2 messages per second into one chat", 429, "too.many.requests"
            )
        return chat

    # -- operations ---------------------------------------------------------------------------

    async def me(self, request: web.Request) -> web.Response:
        return web.json_response(self.state.bot)

    async def updates(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        limit = _int_param(request, "limit", 1, 1000, 100)
        timeout = _int_param(request, "timeout", 0, 90, 30)
        marker = _int_param(request, "marker", 0, 2**63 - 1, None)
        types_raw = request.query.get("types")
        types = {t for t in types_raw.split(",") if t} if types_raw else None
        if state.faults.consume("dropped_polls"):
            await asyncio.sleep(DROP_DELAY)
            return _drop(request)
        if marker is not None:
            state.commit(marker)
        deadline = time.monotonic() + timeout
        while True:
            state.new_update.clear()
            found = state.pending(marker, types, limit)
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    await state.new_update.wait()
            except TimeoutError:
                pass
        return web.json_response(
            {
                "updates": [update for _, update in found],
                "marker": state.marker_after(marker, found),
            }
        )

    async def send_message(self, request: web.Request) -> web.Response:
        chat = self._chat_for_send(request, "messages")
        body = self._json(request)
        if not isinstance(body, dict):
            raise BadRequest("Body must be a NewMessageBody object")
        text = body.get("text")
        if text is not None and (not isinstance(text, str) or len(text) > 4000):
            raise BadRequest("Field 'text' must be a string of at most 4000 characters")
        if body.get("format") not in (None, "markdown", "html"):
            raise BadRequest("Field 'format' must be markdown or html")
        base = f"{request.url.origin()}"
        attachments = outgoing_attachments(self.state, body.get("attachments"), base)
        if text in (None, "") and not attachments:
            raise BadRequest("Message must have text or attachments")
        message = self.state.add_message(chat, from_bot=True, text=text, attachments=attachments)
        return web.json_response({"message": message})

    async def get_messages(self, request: web.Request) -> web.Response:
        count = _int_param(request, "count", 1, 100, 50)
        chat_id = _int_param(request, "chat_id", -(2**63), 2**63 - 1, None)
        ids = [mid for mid in request.query.get("message_ids", "").split(",") if mid]
        if chat_id is None and not ids:
            raise BadRequest("Parameter 'chat_id' or 'message_ids' is required")
        if chat_id is not None:
            chat = self.state.chats.get(chat_id)
            if chat is None or chat.status == "removed":
                raise BadRequest("Chat not found", status=404, code="chat.not.found")
            if chat.status == "suspended":
                raise BadRequest("Bot was stopped by user", status=403, code="chat.denied")
            messages = list(reversed(chat.messages))
        else:
            messages = [found[1] for mid in ids if (found := self.state.find_message(mid))]
        return web.json_response({"messages": messages[:count]})

    async def answer(self, request: web.Request) -> web.Response:
        callback_id = request.query.get("callback_id", "")
        if not callback_id.strip():
            raise BadRequest("Parameter 'callback_id' is required")
        known = self.state.callbacks.get(callback_id)
        if known is None:
            raise BadRequest("Callback not found", status=404, code="not.found")
        chat_id, mid, user = known
        chat = self._usable(self.state.chats.get(chat_id), "answers")
        body = self._json(request)
        if not isinstance(body, dict) or not (body.get("message") or body.get("notification")):
            raise BadRequest("Body must be a CallbackAnswer with 'message' or 'notification'")
        notification = body.get("notification")
        if notification is not None and not isinstance(notification, str):
            raise BadRequest("Field 'notification' must be a string")
        if body.get("message") is not None:
            answer_keyboard_message(
                self.state, chat, mid, body["message"], f"{request.url.origin()}"
            )
        self.state.answers.append(
            {"callback_id": callback_id, "chat_id": chat_id, "user_id": user["user_id"], **body}
        )
        return web.json_response({"success": True})

    async def get_upload_url(self, request: web.Request) -> web.Response:
        kind = request.query.get("type")
        if kind not in ("image", "video", "audio", "file"):
            raise BadRequest("Parameter 'type' must be one of image, video, audio, file")
        if kind != "image":
            raise BadRequest("Only image uploads are emulated", status=400, code="not.implemented")
        upload = self.state.new_upload()
        return web.json_response({"url": f"{request.url.origin()}/_upload/{upload.upload_id}"})

    async def get_chat(self, request: web.Request) -> web.Response:
        try:
            chat_id = int(request.match_info["chat_id"])
        except ValueError:
            raise BadRequest("Chat id must be a number") from None
        chat = self.state.chats.get(chat_id)
        if chat is None or chat.status == "removed":
            raise BadRequest("Chat not found", status=404, code="chat.not.found")
        return web.json_response(self.state.chat_info(chat))

    # -- the upload host -------------------------------------------------------------------------

    async def upload(self, request: web.Request) -> web.Response:
        upload = self.state.uploads.get(request.match_info["upload_id"])
        if upload is None or upload.data is not None:
            raise BadRequest("Upload URL is unknown or used", status=404, code="not.found")
        if request.content_type != "multipart/form-data":
            raise BadRequest("Only multipart uploads are emulated (field 'data')")
        form = await request.post()
        field = form.get("data")
        if not isinstance(field, web.FileField):
            raise BadRequest("Multipart field 'data' with the file is required")
        data = field.file.read()
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            raise BadRequest("Only PNG images are emulated", code="file.type")
        self.state.store_upload(upload, data, field.content_type)
        return web.json_response({"photos": {upload.photo_key: {"token": upload.token}}})

    async def file(self, request: web.Request) -> web.Response:
        upload = self.state.uploads_by_token.get(request.match_info["token"])
        if upload is None or upload.data is None:
            raise BadRequest("File not found", status=404, code="not.found")
        return web.Response(body=upload.data, content_type="image/png")
