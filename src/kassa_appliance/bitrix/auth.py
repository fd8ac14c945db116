"""Credentials for Bitrix24 REST calls: an OAuth application or an inbound webhook.

OAuth (needed for ``entity.*`` and ``pull.application.*``): the appliance holds client id,
client secret and a refresh token. The access token is renewed **only** when a call answers
``expired_token``/401 (Bitrix may block apps that refresh on a timer). Each refresh rotates
the refresh token, and the old one stops working, so the new pair is written to the token
file (atomically, fsync, mode 0600) *before* the new access token is used: a crash at any
point leaves a file holding a refresh token the server still accepts.

The token file wins over the configured refresh token, unless the configured one changed
since the file was derived from it (the admin re-paired the device). The file records a
hash of the configured token it came from — never the token itself.

Concurrent callers that all see ``expired_token`` share one refresh: each remembers the
token *generation* its request used and :meth:`OAuthAuth.refresh` only talks to the token
server when no one has refreshed since.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx

from kassa_appliance.bitrix.errors import (
    BitrixError,
    PairingLost,
    ServerError,
    TransportError,
    error_from_payload,
)
from kassa_appliance.config import write_private_file

log = logging.getLogger(__name__)

DEFAULT_TOKEN_URL = "https://oauth.bitrix.info/oauth/token/"
TOKEN_FILE_NAME = "tokens.json"
_TOKEN_FILE_FORMAT = 1


class Auth(Protocol):
    """What the REST client needs from a credential kind."""

    @property
    def generation(self) -> int:
        """Bumped on every successful token refresh."""
        ...

    @property
    def can_refresh(self) -> bool: ...

    def rest_url(self, method: str) -> str:
        """Full URL for a REST method (no secrets in it for OAuth)."""
        ...

    async def access_token(self, http: httpx.AsyncClient) -> str | None:
        """The token to send as ``auth`` (None for webhooks); fetches one if none yet."""
        ...

    async def refresh(self, http: httpx.AsyncClient, seen_generation: int) -> None:
        """Renew the access token unless someone already did since ``seen_generation``."""
        ...


def pairing_fingerprint(client_id: str, refresh_token: str) -> str:
    """Stable, non-reversible id of a configured refresh token (safe to store and log)."""
    return hashlib.sha256(f"{client_id}\0{refresh_token}".encode()).hexdigest()


@dataclass(frozen=True)
class StoredTokens:
    refresh_token: str
    access_token: str | None
    expires: int | None
    paired_with: str | None
    """:func:`pairing_fingerprint` of the configured refresh token this chain started from."""
    client_endpoint: str | None = None
    member_id: str | None = None
    user_id: int | None = None


class TokenFile:
    """The persisted OAuth token pair (``<data_dir>/tokens.json``, mode 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> StoredTokens | None:
        """The stored pair, or None when the file is missing. A corrupt file raises."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        try:
            data = json.loads(text)
            refresh = data["refresh_token"]
            if not isinstance(refresh, str) or not refresh:
                raise ValueError("refresh_token must be a non-empty string")
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"token file {self.path} is not valid: {exc}") from None
        user_id = data.get("user_id")
        return StoredTokens(
            refresh_token=refresh,
            access_token=data.get("access_token") or None,
            expires=data.get("expires"),
            paired_with=data.get("paired_with"),
            client_endpoint=data.get("client_endpoint"),
            member_id=data.get("member_id"),
            user_id=int(user_id) if user_id is not None else None,
        )

    def save(self, tokens: StoredTokens) -> None:
        data: dict[str, Any] = {
            "format": _TOKEN_FILE_FORMAT,
            "paired_with": tokens.paired_with,
            "refresh_token": tokens.refresh_token,
            "access_token": tokens.access_token,
            "expires": tokens.expires,
            "client_endpoint": tokens.client_endpoint,
            "member_id": tokens.member_id,
            "user_id": tokens.user_id,
            "saved_at": int(time.time()),
        }
        write_private_file(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")


class WebhookAuth:
    """An inbound webhook ``https://portal/rest/<user>/<code>/``: REST-only features."""

    def __init__(self, webhook_url: str) -> None:
        if "/rest/" not in webhook_url:
            raise ValueError("bitrix.webhook must look like https://<portal>/rest/<user>/<code>/")
        self._base = webhook_url.rstrip("/") + "/"

    @property
    def generation(self) -> int:
        return 0

    @property
    def can_refresh(self) -> bool:
        return False

    def rest_url(self, method: str) -> str:
        return self._base + method

    async def access_token(self, http: httpx.AsyncClient) -> str | None:
        return None

    async def refresh(self, http: httpx.AsyncClient, seen_generation: int) -> None:
        return None


@dataclass(frozen=True)
class OAuthCredentials:
    portal: str
    """Portal base URL, e.g. ``https://example.bitrix24.ru``."""
    client_id: str
    client_secret: str
    refresh_token: str | None
    """The configured (paired) refresh token; None means "use the token file only"."""
    token_url: str = DEFAULT_TOKEN_URL

    def __repr__(self) -> str:  # never print secrets
        return f"OAuthCredentials(portal={self.portal!r}, client_id={self.client_id!r}, ...)"


class OAuthAuth:
    """OAuth application credentials with persisted, rotating refresh tokens."""

    def __init__(
        self,
        credentials: OAuthCredentials,
        token_file: TokenFile,
        *,
        refresh_attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 30.0,
        after_persist: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``after_persist`` runs right after a rotated pair is on disk and before it is
        used (crash tests pause there); production code leaves it None."""
        self._credentials = credentials
        self._file = token_file
        self._refresh_attempts = refresh_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._after_persist = after_persist
        self._lock = asyncio.Lock()
        self._generation = 0
        self._unsaved: StoredTokens | None = None
        self._tokens = self._initial_tokens()

    def _initial_tokens(self) -> StoredTokens | None:
        creds = self._credentials
        configured = (
            pairing_fingerprint(creds.client_id, creds.refresh_token)
            if creds.refresh_token
            else None
        )
        stored = self._file.load()
        if stored is not None and (configured is None or stored.paired_with == configured):
            log.info("using stored Bitrix24 tokens (pairing %s)", (stored.paired_with or "?")[:8])
            return stored
        if creds.refresh_token is None:
            return None
        if stored is not None:
            log.info(
                "configured refresh token changed: re-pairing (pairing %s)", (configured or "?")[:8]
            )
        return StoredTokens(
            refresh_token=creds.refresh_token,
            access_token=None,
            expires=None,
            paired_with=configured,
        )

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def can_refresh(self) -> bool:
        return True

    @property
    def user_id(self) -> int | None:
        """The Bitrix24 user the tokens belong to (known after the first refresh)."""
        return self._tokens.user_id if self._tokens else None

    def rest_url(self, method: str) -> str:
        return self._credentials.portal.rstrip("/") + "/rest/" + method

    async def access_token(self, http: httpx.AsyncClient) -> str | None:
        if self._unsaved is not None:
            async with self._lock:
                self._persist_unsaved()
        if self._tokens is None:
            raise PairingLost(
                "NOT_PAIRED", "no refresh token configured (bitrix.refresh-token) and no token file"
            )
        if self._tokens.access_token is None:
            await self.refresh(http, self._generation)
        assert self._tokens is not None
        return self._tokens.access_token

    async def refresh(self, http: httpx.AsyncClient, seen_generation: int) -> None:
        async with self._lock:
            if self._generation != seen_generation and self._tokens and self._tokens.access_token:
                return  # another caller refreshed while we waited
            if self._tokens is None:
                raise PairingLost("NOT_PAIRED", "no refresh token to renew the access token")
            answer = await self._request_new_pair(http, self._tokens.refresh_token)
            new = self._tokens_from_answer(answer)
            self._tokens = new
            self._unsaved = new
            self._persist_unsaved()
            self._generation += 1
            log.info(
                "Bitrix24 access token renewed (generation %d, pairing %s)",
                self._generation,
                (new.paired_with or "?")[:8],
            )
            if self._after_persist is not None:
                await self._after_persist()

    def _persist_unsaved(self) -> None:
        if self._unsaved is None:
            return
        self._file.save(self._unsaved)  # raises OSError: the new token stays unused
        self._unsaved = None

    def _tokens_from_answer(self, answer: dict[str, Any]) -> StoredTokens:
        access = answer.get("access_token")
        refresh = answer.get("refresh_token")
        if not isinstance(access, str) or not access or not isinstance(refresh, str) or not refresh:
            raise ServerError(
                "ERROR_UNEXPECTED_ANSWER",
                "token endpoint answered without access_token/refresh_token",
                method="oauth/token",
            )
        expires = answer.get("expires")
        if expires is None and isinstance(answer.get("expires_in"), int):
            expires = int(time.time()) + int(answer["expires_in"])
        user_id = answer.get("user_id")
        assert self._tokens is not None
        return StoredTokens(
            refresh_token=refresh,
            access_token=access,
            expires=int(expires) if expires is not None else None,
            paired_with=self._tokens.paired_with,
            client_endpoint=answer.get("client_endpoint"),
            member_id=answer.get("member_id"),
            user_id=int(user_id) if user_id is not None else None,
        )

    async def _request_new_pair(
        self, http: httpx.AsyncClient, refresh_token: str
    ) -> dict[str, Any]:
        creds = self._credentials
        params = {
            "grant_type": "refresh_token",
            "client_id": creds.client_id,
            "client_secret": creds.client_secret,
            "refresh_token": refresh_token,
        }
        last: BitrixError | None = None
        for attempt in range(self._refresh_attempts):
            if attempt:
                ceiling = min(self._max_delay, self._base_delay * 2**attempt)
                await asyncio.sleep(random.uniform(ceiling / 2, ceiling))
            try:
                response = await http.get(creds.token_url, params=params)
            except httpx.HTTPError as exc:
                last = TransportError(
                    "TOKEN_SERVER_UNREACHABLE", type(exc).__name__, method="oauth/token"
                )
                log.warning("token endpoint not reachable (%s), retrying", type(exc).__name__)
                continue
            try:
                payload = response.json()
            except ValueError:
                payload = None
            error = error_from_payload(payload, response.status_code, "oauth/token")
            if response.status_code >= 500 or (error is None and response.status_code != 200):
                last = error or ServerError(
                    "TOKEN_SERVER_ERROR", f"HTTP {response.status_code}", method="oauth/token"
                )
                log.warning("token endpoint answered HTTP %d, retrying", response.status_code)
                continue
            if error is not None:
                if error.code.lower() in {"invalid_grant", "invalid_client"}:
                    raise PairingLost(
                        error.code,
                        f"{error.description or 'refresh refused'}; pair the appliance again "
                        "with a new refresh token",
                        status=error.status,
                        method="oauth/token",
                    )
                raise error
            if not isinstance(payload, dict):
                raise ServerError(
                    "ERROR_UNEXPECTED_ANSWER", "token endpoint answer is not a JSON object"
                )
            return payload
        assert last is not None
        raise last
