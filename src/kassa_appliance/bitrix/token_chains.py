"""Token refresh that survives a lost answer: an in-flight marker and a spare chain.

What the platform does (docs/architecture.md, "Pairing and tokens"): each refresh returns a
new refresh token to keep "instead of the previous one"; a refresh token lives 180 days;
a refused one answers ``invalid_grant``. Whether the previous token still works after a
refresh, and whether two chains of the same user and app stay independent, is not
documented. The appliance assumes the worst for the first (a refresh whose answer is lost —
a cut connection, a SIGKILL before the new pair is saved — leaves the stored token used up)
and relies on the second:

* before a refresh request leaves, an *in-flight* marker is saved with the tokens; the
  answer is saved (clearing it) before the new access token is used. A marker found later
  means the answer may have been lost.
* a pairing may hand over two refresh tokens (``<main>,<spare>``): the spare chain is kept
  aside, renewed on its own every :data:`SPARE_RENEW_AFTER` (never together with a refresh
  of the main chain, so one lost answer cannot cost both), and when the main token is
  refused it re-seeds the main chain. A spare is used once; a new pairing brings a new one.
* when every token is refused the pairing is recorded as lost (:mod:`.pairing`), with the
  reason, and no further request is sent to the token server until the admin re-pairs.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx

from kassa_appliance.bitrix.errors import (
    BitrixError,
    PairingLost,
    ServerError,
    TransportError,
    error_from_payload,
)
from kassa_appliance.bitrix.pairing import (
    REPAIR_COMMAND,
    PairingState,
    PairingStateFile,
    SpareState,
)
from kassa_appliance.bitrix.token_store import InFlight, StoredTokens

log = logging.getLogger(__name__)

SPARE_RENEW_AFTER = 30 * 86400
"""Renew the spare chain when its token is older than this (it lives 180 days)."""


@dataclass(frozen=True)
class TokenServer:
    """Where and with what the refresh grant is sent, and how often it is retried."""

    token_url: str
    client_id: str
    client_secret: str
    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0

    def __repr__(self) -> str:  # never print secrets
        return f"TokenServer({self.token_url!r}, {self.client_id!r}, ...)"

    async def exchange(self, http: httpx.AsyncClient, refresh_token: str) -> dict[str, Any]:
        """One refresh grant (retried on transport errors and 5xx); the answer as a dict.

        Raises :class:`PairingLost` on ``invalid_grant``/``invalid_client``.
        """
        params = {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": refresh_token,
        }
        last: BitrixError | None = None
        for attempt in range(self.attempts):
            if attempt:
                ceiling = min(self.max_delay, self.base_delay * 2**attempt)
                await asyncio.sleep(random.uniform(ceiling / 2, ceiling))
            try:
                response = await http.get(self.token_url, params=params)
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
                        error.description or "refresh refused",
                        status=error.status,
                        method="oauth/token",
                        answer_lost=isinstance(last, TransportError),
                    )
                raise error
            if not isinstance(payload, dict):
                raise ServerError(
                    "ERROR_UNEXPECTED_ANSWER", "token endpoint answer is not a JSON object"
                )
            return payload
        assert last is not None
        raise last


def tokens_from_answer(answer: dict[str, Any], previous: StoredTokens) -> StoredTokens:
    """The main chain's new pair from a token answer (spare and pairing kept, marker cleared)."""
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
    return replace(
        previous,
        refresh_token=refresh,
        access_token=access,
        expires=int(expires) if expires is not None else None,
        client_endpoint=answer.get("client_endpoint"),
        member_id=answer.get("member_id"),
        user_id=int(user_id) if user_id is not None else None,
        in_flight=None,
    )


def _new_refresh_token(answer: dict[str, Any]) -> str:
    refresh = answer.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        raise ServerError(
            "ERROR_UNEXPECTED_ANSWER", "token endpoint answered without refresh_token"
        )
    return refresh


class TokenChains:
    """Renews the main chain, falling back to the spare; records a lost pairing."""

    def __init__(
        self,
        server: TokenServer,
        persist: Callable[[StoredTokens], None],
        pairing_file: PairingStateFile,
        *,
        before_persist: Callable[[], Awaitable[None]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``persist`` saves the tokens durably (raising OSError if it cannot);
        ``before_persist`` runs between a rotated answer and its save (test pause only)."""
        self._server = server
        self._persist = persist
        self._pairing = pairing_file
        self._before_persist = before_persist
        self._clock = clock

    async def renew(self, http: httpx.AsyncClient, tokens: StoredTokens) -> StoredTokens:
        """A new main pair (saved). Raises PairingLost (recorded) when no chain works."""
        interrupted = tokens.in_flight
        marked = replace(tokens, in_flight=InFlight("main", int(self._clock())))
        self._persist(marked)
        try:
            answer = await self._server.exchange(http, tokens.refresh_token)
        except PairingLost as refused:
            return await self._reseed_from_spare(http, marked, refused, interrupted)
        renewed = tokens_from_answer(answer, marked)
        await self._save_rotated(renewed)
        if interrupted is not None:
            log.info("Bitrix24 accepted the refresh token again after an interrupted refresh")
        return renewed

    async def renew_spare_if_due(
        self, http: httpx.AsyncClient, tokens: StoredTokens
    ) -> StoredTokens:
        """Renew the spare chain when it is old; called only while the main chain works."""
        if tokens.spare_refresh_token is None:
            return tokens
        age = self._clock() - (tokens.spare_saved_at or 0)
        if age < SPARE_RENEW_AFTER:
            return tokens
        marked = replace(tokens, in_flight=InFlight("spare", int(self._clock())))
        self._persist(marked)
        try:
            answer = await self._server.exchange(http, tokens.spare_refresh_token)
        except PairingLost as refused:
            log.warning(
                "Bitrix24 refused the spare refresh token (%s); the appliance keeps working "
                "on its main chain but a lost refresh answer would now unpair it",
                refused.code,
            )
            lost = replace(marked, spare_refresh_token=None, spare_saved_at=None, in_flight=None)
            self._persist(lost)
            self._record(lost, paired=True, spare="none")
            return lost
        except BitrixError as error:  # server down: try again at the next main refresh
            log.warning("spare token chain not renewed (%s); will retry later", error.code)
            return tokens
        renewed = replace(
            marked,
            spare_refresh_token=_new_refresh_token(answer),
            spare_saved_at=int(self._clock()),
            in_flight=None,
        )
        await self._save_rotated(renewed)
        log.info("spare Bitrix24 token chain renewed")
        return renewed

    async def _reseed_from_spare(
        self,
        http: httpx.AsyncClient,
        marked: StoredTokens,
        refused: PairingLost,
        interrupted: InFlight | None,
    ) -> StoredTokens:
        why = _refusal_reason(refused, interrupted)
        spare = marked.spare_refresh_token
        if spare is None or refused.code.lower() == "invalid_client":
            raise self._lose(marked, f"{why}; no spare token chain to fall back on")
        log.warning("%s; re-seeding the main chain from the spare chain", why)
        spare_marked = replace(marked, in_flight=InFlight("spare", int(self._clock())))
        self._persist(spare_marked)
        try:
            answer = await self._server.exchange(http, spare)
        except PairingLost as spare_refused:
            raise self._lose(
                spare_marked,
                f"{why}; the spare refresh token was refused too ({spare_refused.code})",
            ) from None
        renewed = replace(
            tokens_from_answer(answer, spare_marked), spare_refresh_token=None, spare_saved_at=None
        )
        await self._save_rotated(renewed)
        self._record(renewed, paired=True, spare="used")
        log.warning(
            "Bitrix24 pairing recovered from the spare chain; pair again at a convenient time "
            "to have a spare for the next lost refresh"
        )
        return renewed

    async def _save_rotated(self, tokens: StoredTokens) -> None:
        if self._before_persist is not None:
            await self._before_persist()
        self._persist(tokens)

    def _lose(self, tokens: StoredTokens, why: str) -> PairingLost:
        reason = f"{why}; pair the appliance again with a new refresh token: {REPAIR_COMMAND}"
        log.error("Bitrix24 pairing lost: %s", reason)
        self._record(tokens, paired=False, reason=reason)
        return PairingLost("PAIRING_LOST", reason, method="oauth/token")

    def _record(
        self,
        tokens: StoredTokens,
        *,
        paired: bool,
        spare: SpareState = "none",
        reason: str | None = None,
    ) -> None:
        self._pairing.save(
            PairingState(
                paired=paired, paired_with=tokens.paired_with, reason=reason, spare_chain=spare
            )
        )


def _refusal_reason(refused: PairingLost, interrupted: InFlight | None) -> str:
    if interrupted is not None:
        return (
            "the answer to a token refresh was lost (interrupted at "
            f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(interrupted.started_at))}) "
            f"and Bitrix24 refuses the refresh token it replaced ({refused.code})"
        )
    if refused.answer_lost:
        return (
            "the connection was cut before the answer to a token refresh arrived, and "
            f"Bitrix24 refuses the refresh token it replaced ({refused.code})"
        )
    return (
        f"Bitrix24 refused the refresh token ({refused.code}: the answer to a refresh was "
        "lost, the token expired after 180 days unused, or the app was removed)"
    )
