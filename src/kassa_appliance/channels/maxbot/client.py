"""A small MAX Bot API client on httpx, for a daemon that runs for months.

Why not a library: the maintained Python client (``maxapi``, love-apples, MIT) is an
aiogram-style framework on aiohttp that owns the polling loop, keeps the marker in memory
and hides retries; the daemon needs the marker persisted after each handled batch, its own
back-off and rate limits, no retry where a send is ambiguous, and one HTTP stack (httpx,
as the Bitrix24 client). The few calls it needs are small (docs/chat-bots.md, "## MAX").

* ``Authorization: <token>`` (the raw token, no ``Bearer``) on every Bot API call; never on
  the upload host, never in a log line or an error message.
* TLS always verified: system CAs plus the Russian Trusted Root CA (:mod:`.tls`); an
  upload URL must be https unless the API itself is a loopback emulator.
* Rate limits (:mod:`.limits`); a 429 pauses every request, with back-off.
* Retries: a request that never reached MAX (connection refused, DNS) and explicit
  refusals (429, 5xx) are retried a few times; an answer lost after ``POST /messages`` was
  sent is not (``MaxApiError.ambiguous``): the caller looks before sending again.
* ``attachment.not.ready`` (HTTP 400 after an upload) is retried with growing pauses.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any
from urllib.parse import urlsplit

import httpx

from kassa_appliance.channels.maxbot.errors import MaxApiError
from kassa_appliance.channels.maxbot.limits import RateLimiter
from kassa_appliance.inputs import shorten
from kassa_appliance.setting_checks import is_loopback

log = logging.getLogger(__name__)

JsonDict = dict[str, Any]
ATTEMPTS = 4
"""Tries of one call against refusals (429, 5xx) and unsent requests."""
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
NOT_READY_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Pauses before re-sending a message whose image MAX is still processing (~15 s in all;
MAX's clients use 1, 2, 4 s)."""
UPDATE_TYPES = ("message_created", "message_callback", "bot_started")
CONNECT_TIMEOUT = 10.0
READ_MARGIN = 15.0
"""Seconds a long poll may take beyond its ``timeout`` before we call it dropped."""


def backoff(attempt: int, first: float = BACKOFF_FIRST, ceiling: float = BACKOFF_MAX) -> float:
    return float(min(ceiling, first * 2 ** max(0, attempt - 1)))


class MaxClient:
    def __init__(
        self,
        token: str,
        api_url: str,
        *,
        limiter: RateLimiter | None = None,
        verify: ssl.SSLContext | None = None,
        sleep: Any = asyncio.sleep,
    ) -> None:
        from kassa_appliance.channels.maxbot.tls import max_ssl_context

        self.api_url = api_url.rstrip("/")
        self.limiter = limiter or RateLimiter()
        self._sleep = sleep
        self._http = httpx.AsyncClient(
            base_url=self.api_url,
            headers={"Authorization": token, "User-Agent": "kassa-appliance"},
            verify=verify or max_ssl_context(),
            timeout=httpx.Timeout(CONNECT_TIMEOUT + READ_MARGIN, connect=CONNECT_TIMEOUT),
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    # -- the calls the bot makes --------------------------------------------------------------

    async def get_me(self) -> JsonDict:
        return dict(await self._call("GET", "/me"))

    async def get_updates(
        self, marker: int | None, timeout: int, *, limit: int = 100
    ) -> tuple[list[JsonDict], int | None]:
        """One long poll (no retries here: the poller backs off); ``(updates, marker)``."""
        params: JsonDict = {"limit": limit, "timeout": timeout, "types": ",".join(UPDATE_TYPES)}
        if marker is not None:
            params["marker"] = marker
        read = httpx.Timeout(timeout + READ_MARGIN, connect=CONNECT_TIMEOUT)
        data = await self._call("GET", "/updates", params=params, timeout=read, attempts=1)
        updates = data.get("updates") if isinstance(data, dict) else None
        if not isinstance(updates, list):
            raise MaxApiError(200, "bad.answer", "GET /updates answered without 'updates'")
        next_marker = data.get("marker")
        return [u for u in updates if isinstance(u, dict)], (
            next_marker if isinstance(next_marker, int) else marker
        )

    async def send_message(self, chat_id: str, body: JsonDict) -> JsonDict:
        """``POST /messages?chat_id=…``; the sent ``Message``. Re-sent while an attached
        image is not ready; never re-sent after an answer was lost (``ambiguous``)."""
        for delay in (*NOT_READY_DELAYS, None):
            await self.limiter.chat_slot("messages", chat_id)
            try:
                data = await self._call(
                    "POST", "/messages", params={"chat_id": chat_id}, json=body, idempotent=False
                )
            except MaxApiError as error:
                if not error.not_ready or delay is None:
                    raise
                log.info("MAX is still processing the image; sending again in %.1f s", delay)
                await self._sleep(delay)
                continue
            message = data.get("message") if isinstance(data, dict) else None
            if not isinstance(message, dict):
                raise MaxApiError(200, "bad.answer", "POST /messages answered without 'message'")
            return message
        raise AssertionError("unreachable")  # pragma: no cover

    async def get_messages(self, chat_id: str, count: int = 100) -> list[JsonDict]:
        """The chat's latest messages (newest first)."""
        data = await self._call("GET", "/messages", params={"chat_id": chat_id, "count": count})
        messages = data.get("messages") if isinstance(data, dict) else None
        return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []

    async def answer_callback(self, callback_id: str, chat_id: str, notification: str) -> None:
        await self.limiter.chat_slot("answers", chat_id)
        body: JsonDict = {"notification": notification}
        data = await self._call("POST", "/answers", params={"callback_id": callback_id}, json=body)
        if isinstance(data, dict) and data.get("success") is False:
            raise MaxApiError(200, "answer.refused", shorten(str(data.get("message", "")), 200))

    async def upload_image(self, png: bytes, filename: str = "qr.png") -> str:
        """The upload flow (max-notes §4.1): an upload URL, the file as multipart field
        ``data`` to it, the token from the answer (``photos.<key>.token`` or ``token``)."""
        for attempt in range(1, ATTEMPTS + 1):
            endpoint = await self._call("POST", "/uploads", params={"type": "image"})
            url = endpoint.get("url") if isinstance(endpoint, dict) else None
            if not isinstance(url, str) or not url:
                raise MaxApiError(200, "bad.answer", "POST /uploads answered without 'url'")
            self._check_upload_url(url)
            try:
                return await self._upload_to(url, png, filename)
            except MaxApiError as error:
                if not error.retryable or attempt == ATTEMPTS:
                    raise
                log.info("MAX image upload failed (%s); again in %.1f s", error, backoff(attempt))
                await self._sleep(backoff(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- plumbing ---------------------------------------------------------------------------

    def _check_upload_url(self, url: str) -> None:
        parts = urlsplit(url)
        api_host = urlsplit(self.api_url).hostname or ""
        plain_ok = (
            parts.scheme == "http" and is_loopback(api_host) and is_loopback(parts.hostname or "")
        )
        if parts.scheme != "https" and not plain_ok:
            raise MaxApiError(200, "bad.answer", "the upload URL MAX gave is not https")

    async def _upload_to(self, url: str, png: bytes, filename: str) -> str:
        await self.limiter.acquire()
        request = self._http.build_request(
            "POST", url, files={"data": (filename, png, "image/png")}
        )
        del request.headers["Authorization"]  # the upload host gets no bot token
        try:
            response = await self._http.send(request)
        except httpx.HTTPError as error:
            raise MaxApiError(0, "network", _describe(error)) from None
        data = _decode(response)
        if response.status_code != 200:
            raise _error_of(response.status_code, data)
        token = data.get("token") if isinstance(data, dict) else None
        photos = data.get("photos") if isinstance(data, dict) else None
        if token is None and isinstance(photos, dict):
            first = next(iter(photos.values()), None)
            token = first.get("token") if isinstance(first, dict) else None
        if not isinstance(token, str) or not token:
            raise MaxApiError(200, "bad.answer", "the image upload answered without a token")
        return token

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: JsonDict | None = None,
        json: JsonDict | None = None,
        timeout: httpx.Timeout | None = None,
        attempts: int = ATTEMPTS,
        idempotent: bool = True,
    ) -> Any:
        for attempt in range(1, attempts + 1):
            await self.limiter.acquire()
            try:
                response = await self._http.request(
                    method,
                    path,
                    params=params,
                    json=json,
                    timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout) as error:
                failure = MaxApiError(0, "network", _describe(error))
            except httpx.HTTPError as error:
                failure = MaxApiError(0, "network", _describe(error), ambiguous=not idempotent)
                if not idempotent:
                    raise failure from None
            else:
                data = _decode(response)
                if response.status_code == 200:
                    return data
                failure = _error_of(response.status_code, data)
                if response.status_code == 429:
                    self.limiter.pause(_retry_after(response) or backoff(attempt, 1.0))
                if not failure.retryable:
                    raise failure
            if attempt == attempts:
                raise failure
            wait = backoff(attempt)
            log.info("MAX %s %s: %s; again in %.1f s", method, path, failure, wait)
            await self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _error_of(status: int, data: Any) -> MaxApiError:
    if isinstance(data, dict):
        code = shorten(str(data.get("code", "")), 60) or f"http.{status}"
        message = shorten(str(data.get("message", "")), 200)
        return MaxApiError(status, code, message)
    return MaxApiError(status, f"http.{status}", "the answer is not the documented JSON error")


def _retry_after(response: httpx.Response) -> float | None:
    raw = response.headers.get("Retry-After", "")
    try:
        return min(BACKOFF_MAX, max(0.0, float(raw)))
    except ValueError:
        return None


_FAILURES = (
    (httpx.ConnectTimeout, "timed out connecting"),
    (httpx.ConnectError, "could not connect (network, DNS or TLS certificate)"),
    (httpx.ReadTimeout, "timed out waiting for the answer"),
    (httpx.RemoteProtocolError, "the connection was closed without an answer"),
    (httpx.TimeoutException, "timed out"),
)


def _describe(error: httpx.HTTPError) -> str:
    """The kind of failure, never the request (its headers carry the token)."""
    for kind, text in _FAILURES:
        if isinstance(error, kind):
            return text
    return "network failure"
