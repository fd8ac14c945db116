"""The portal's half of the frame protocol that ``@bitrix24/b24jssdk`` speaks in frame mode.

An app page runs in an iframe of the portal; the SDK (``frame/message/controller.mjs``)
posts string messages to the parent window, ``<command>:<params JSON>:<callback>:<app sid>``
(the params part is left out when empty), and waits for ``<callback>:<answer JSON>`` posted
back from the portal's origin. The SDK learns the portal from the iframe's *name*,
``<domain>|<1 for https, 0 for http>|<app sid>`` (``loader-b24frame.mjs``), and calls REST
at ``http(s)://<domain>/rest/<method>`` with ``auth`` = the access token of the init data
(``core/http/abstract-http.mjs``), so ``PROTOCOL: 0`` is the supported way to a plain-http
emulator.

This module keeps the frames the portal page opened (one :class:`FrameSession` each: the
user, the placement, the language) and answers the commands the Kassa app and the SDK send:
``getInitData`` (tokens of the session's user, ``INSTALL`` until ``setInstallFinish``),
``refreshAuth`` (a fresh, independent token pair), ``setInstall``/``setInstallFinish``, and
the window commands (``resizeWindow``, ``setTitle``, …) with an empty answer. Every command
is recorded in :attr:`FrameHost.log` for tests. The page's JavaScript (``portal_page``)
only relays the messages to ``POST /_portal/frame``.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from kassa_appliance.testbeds.bitrix24.state import ADMIN_USER_ID, PortalState

WINDOW_COMMANDS = frozenset(
    {
        "resizeWindow",
        "reloadWindow",
        "setTitle",
        "setScroll",
        "setAppOption",
        "setUserOption",
        "openApplication",
        "closeApplication",
        "openPath",
        "getInterface",
        "placementBindEvent",
    }
)
"""Commands the emulator acknowledges with an empty answer (it has no window to change)."""


class FrameError(Exception):
    """A frame request the portal cannot answer (unknown session, bad command)."""


@dataclass
class FrameSession:
    """One app frame the portal page opened."""

    session_id: str
    user_id: int
    lang: str = "ru"
    placement: str = "DEFAULT"
    placement_options: dict[str, Any] = field(default_factory=dict)
    refresh_tokens: list[str] = field(default_factory=list)
    """Every refresh token handed to this frame, oldest first."""


@dataclass(frozen=True)
class FrameCall:
    """One command a frame sent (for tests: which commands the app really uses)."""

    session_id: str
    command: str
    params: Any


class FrameHost:
    """The portal side of every app frame: sessions, install state, command answers."""

    def __init__(self, state: PortalState, portal_url: str = "") -> None:
        self.state = state
        self.portal_url = portal_url
        self.installed = False
        """Whether the app called ``installFinish`` (the portal's install mode ends)."""
        self.install_finish_calls = 0
        self.sessions: dict[str, FrameSession] = {}
        self.log: list[FrameCall] = []
        self.app_sid = secrets.token_hex(16)

    def open(
        self,
        user_id: int = ADMIN_USER_ID,
        *,
        lang: str = "ru",
        placement: str = "DEFAULT",
        placement_options: dict[str, Any] | None = None,
    ) -> FrameSession:
        self.state.ensure_user(user_id)
        session = FrameSession(
            secrets.token_hex(12), user_id, lang, placement or "DEFAULT", placement_options or {}
        )
        self.sessions[session.session_id] = session
        return session

    def frame_name(self, domain: str) -> str:
        """The iframe's ``name``: what ``loader-b24frame.mjs`` parses (plain http: 0)."""
        return f"{domain}|0|{self.app_sid}"

    def answer(self, session_id: str, command: str, params: Any) -> Any:
        """The answer posted back to the frame for one command (None: an empty answer)."""
        session = self.sessions.get(session_id)
        if session is None:
            raise FrameError(f"no app frame {session_id!r}: reload the portal page")
        self.log.append(FrameCall(session_id, command, params))
        if command == "getInitData":
            return self._init_data(session)
        if command == "refreshAuth":
            return self._auth(session)
        if command == "setInstallFinish":
            self.installed = True
            self.install_finish_calls += 1
            return None
        if command == "setInstall" or command in WINDOW_COMMANDS:
            return None
        raise FrameError(f"the emulated portal does not answer the frame command {command!r}")

    def commands(self) -> list[str]:
        return [call.command for call in self.log]

    def _auth(self, session: FrameSession) -> dict[str, Any]:
        """A new token pair of its own chain: refreshing in the frame never spends a token
        the admin may have copied into a pairing code."""
        rotated = self.state.rotate(self.state.issue_refresh_token(session.user_id))
        assert rotated is not None
        access, refresh, _user, expires = rotated
        session.refresh_tokens.append(refresh)
        return {
            "AUTH_ID": access,
            "REFRESH_ID": refresh,
            "AUTH_EXPIRES": str(max(1, int(expires - self.state.clock()))),
        }

    def _init_data(self, session: FrameSession) -> dict[str, Any]:
        user = self.state.users[session.user_id]
        domain = self.portal_url.split("://", 1)[-1]
        return {
            "DOMAIN": domain,
            "PROTOCOL": 0,
            "PATH": "/rest/",
            "LANG": session.lang,
            **self._auth(session),
            "MEMBER_ID": self.state.member_id,
            "IS_ADMIN": user.admin,
            "INSTALL": not self.installed,
            "FIRST_RUN": False,
            "PLACEMENT": session.placement,
            "PLACEMENT_OPTIONS": session.placement_options,
            "APP_OPTIONS": {},
            "USER_OPTIONS": {},
        }
