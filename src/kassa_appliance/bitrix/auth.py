"""Credentials for Bitrix24 REST calls: an OAuth application or an inbound webhook.

OAuth (needed for ``entity.*`` and ``pull.application.*``): the appliance holds client id,
client secret and a refresh token. The access token is renewed **only** when a call answers
``expired_token``/401 (Bitrix may block apps that refresh on a timer). Each refresh rotates
the refresh token, so the new pair is written to the token file (atomically, fsync, mode
0600) *before* the new access token is used. An answer that never arrives (cut connection,
SIGKILL before the save) is covered by :mod:`~kassa_appliance.bitrix.token_chains`: an
in-flight marker and a spare token chain; when nothing works the pairing is recorded as
lost (:mod:`~kassa_appliance.bitrix.pairing`) and no more refreshes are tried.

The token file wins over the configured refresh token, unless the configured one changed
since the file was derived from it (the admin re-paired the device). The file records a
hash of the configured token it came from — never the token itself.

Concurrent callers that all see ``expired_token`` share one refresh: each remembers the
token *generation* its request used and :meth:`OAuthAuth.refresh` only talks to the token
server when no one has refreshed since.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import httpx

from kassa_appliance.bitrix.errors import PairingLost
from kassa_appliance.bitrix.pairing import (
    PAIRING_FILE_NAME,
    PairingState,
    PairingStateFile,
    announce,
    split_pairing_value,
)
from kassa_appliance.bitrix.token_chains import TokenChains, TokenServer
from kassa_appliance.bitrix.token_store import (
    TOKEN_FILE_NAME,
    StoredTokens,
    TokenFile,
    pairing_fingerprint,
)

__all__ = [
    "DEFAULT_TOKEN_URL",
    "TOKEN_FILE_NAME",
    "Auth",
    "OAuthAuth",
    "OAuthCredentials",
    "StoredTokens",
    "TokenFile",
    "WebhookAuth",
    "pairing_fingerprint",
]

log = logging.getLogger(__name__)

DEFAULT_TOKEN_URL = "https://oauth.bitrix.info/oauth/token/"


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
        before_persist: Callable[[], Awaitable[None]] | None = None,
        pairing_file: PairingStateFile | None = None,
    ) -> None:
        """``after_persist`` runs right after a rotated pair is on disk and before it is
        used, ``before_persist`` between its arrival and its save (crash tests pause
        there); production code leaves both None. ``pairing_file`` defaults to
        ``pairing.json`` beside the token file."""
        self._credentials = credentials
        self._file = token_file
        self._pairing_file = pairing_file or PairingStateFile(
            token_file.path.with_name(PAIRING_FILE_NAME)
        )
        self._after_persist = after_persist
        self._chains = TokenChains(
            TokenServer(
                credentials.token_url,
                credentials.client_id,
                credentials.client_secret,
                attempts=refresh_attempts,
                base_delay=base_delay,
                max_delay=max_delay,
            ),
            self._save,
            self._pairing_file,
            before_persist=before_persist,
        )
        self._lock = asyncio.Lock()
        self._generation = 0
        self._unsaved: StoredTokens | None = None
        self._lost: str | None = None
        """Why the pairing is lost (every refresh token refused); None while paired."""
        self._tokens = self._initial_tokens()
        self._check_recorded_pairing()

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
            if stored.in_flight is not None:
                log.warning(
                    "a refresh of the %s token chain was interrupted; its answer may have "
                    "been lost, so Bitrix24 may refuse the stored refresh token",
                    stored.in_flight.chain,
                )
            return stored
        if creds.refresh_token is None:
            return None
        if stored is not None:
            log.info(
                "configured refresh token changed: re-pairing (pairing %s)", (configured or "?")[:8]
            )
        main, spare = split_pairing_value(creds.refresh_token)
        # A new pairing voids a recorded loss of the previous one.
        self._pairing_file.save(
            PairingState(
                paired=True, paired_with=configured, spare_chain="ready" if spare else "none"
            )
        )
        return StoredTokens(
            refresh_token=main,
            access_token=None,
            expires=None,
            paired_with=configured,
            spare_refresh_token=spare,
            spare_saved_at=int(time.time()) if spare else None,
        )

    def _check_recorded_pairing(self) -> None:
        """Take over a loss recorded by an earlier run, and tell the listeners the state."""
        if self._tokens is None:
            return
        state = self._pairing_file.load()
        if state is None or state.paired_with != self._tokens.paired_with:
            return
        if not state.paired:
            self._lost = state.reason or "Bitrix24 refused every refresh token"
            log.error("Bitrix24 pairing lost earlier: %s", self._lost)
        announce(state)

    @property
    def generation(self) -> int:
        return self._generation

    @property
    def can_refresh(self) -> bool:
        return True

    @property
    def paired(self) -> bool:
        """False once every refresh token was refused (until re-paired)."""
        return self._tokens is not None and self._lost is None

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
        self._raise_if_unpaired()
        assert self._tokens is not None
        if self._tokens.access_token is None:
            await self.refresh(http, self._generation)
        assert self._tokens is not None
        return self._tokens.access_token

    async def refresh(self, http: httpx.AsyncClient, seen_generation: int) -> None:
        async with self._lock:
            if self._generation != seen_generation and self._tokens and self._tokens.access_token:
                return  # another caller refreshed while we waited
            self._raise_if_unpaired()
            assert self._tokens is not None
            try:
                new = await self._chains.renew(http, self._tokens)
            except PairingLost as lost:
                if lost.code == "PAIRING_LOST":
                    self._lost = lost.description
                raise
            self._generation += 1
            log.info(
                "Bitrix24 access token renewed (generation %d, pairing %s)",
                self._generation,
                (new.paired_with or "?")[:8],
            )
            if self._after_persist is not None:
                await self._after_persist()
            try:  # the spare chain is renewed at other times than a failing main chain
                await self._chains.renew_spare_if_due(http, new)
            except OSError as error:
                log.warning("spare token chain not renewed: %s", error)

    def _raise_if_unpaired(self) -> None:
        if self._lost is not None:
            raise PairingLost("PAIRING_LOST", self._lost, method="oauth/token")
        if self._tokens is None:
            raise PairingLost(
                "NOT_PAIRED", "no refresh token configured (bitrix.refresh-token) and no token file"
            )

    def _save(self, tokens: StoredTokens) -> None:
        """Make ``tokens`` current and write them; an OSError leaves them to be saved before
        the next use (a rotated token is never used unsaved)."""
        self._tokens = tokens
        self._unsaved = tokens
        self._persist_unsaved()

    def _persist_unsaved(self) -> None:
        if self._unsaved is None:
            return
        self._file.save(self._unsaved)  # raises OSError: the new token stays unused
        self._unsaved = None
