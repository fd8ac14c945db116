"""The emulator process: one REST/OAuth HTTP server (plus, when available, the push server)
over one :class:`~kassa_appliance.testbeds.bitrix24.state.PortalState`, with fault controls.

Routes on the REST port:

* ``/rest/<method>`` (OAuth, ``auth`` in query or body) and ``/rest/<user>/<code>/<method>``
  (inbound webhook); JSON or form-encoded bodies.
* ``/oauth/token/`` — the token endpoint (point ``bitrix.token-url`` here).
* ``/_emulator/…`` — test controls (loopback only, no auth):
  ``POST faults`` ``{"kind": "drop|drop_answer|rate_limit|error500|latency", "count": N|null,
  "methods": [...], "seconds": s}`` or ``{"clear": true}``; ``POST expire-tokens``;
  ``POST pairing`` ``{"user_id": 1}`` → fresh credentials; ``GET stats``;
  ``POST limits`` ``{"profile": "standard|enterprise|test", "rate": r, "burst": n,
  "operating_limit": s, "operating_window": s, "method_costs": {method: s}}`` (every key
  optional; the counters start empty) → the limits in force.
* ``/_portal/…`` and ``/_app/…`` — the portal page hosting the built Kassa app in an iframe
  and answering the SDK's frame protocol (``portal_page.py``, ``frame_protocol.py``); the
  ``/rest/`` answers carry CORS headers for it.

Every ``/rest/…`` request passes the portal's rate limit first (``limits.py``: a leaky
bucket per source address, 503 ``QUERY_LIMIT_EXCEEDED`` beyond it); the profile is the
``limits`` argument, else the one ``$KASSA_EMULATOR_LIMITS`` names, else ``standard``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from pathlib import Path
from typing import Any

from kassa_appliance.bitrix.auth import OAuthCredentials
from kassa_appliance.bitrix.phpquery import parse_query
from kassa_appliance.testbeds.bitrix24.faults import Faults
from kassa_appliance.testbeds.bitrix24.frame_protocol import FrameHost
from kassa_appliance.testbeds.bitrix24.limits import (
    QUERY_LIMIT_BODY,
    QUERY_LIMIT_STATUS,
    LimitProfile,
    PortalLimits,
    default_profile,
    profile_named,
)
from kassa_appliance.testbeds.bitrix24.oauth import token_endpoint
from kassa_appliance.testbeds.bitrix24.portal_page import (
    AppFiles,
    PortalPage,
    default_app_dist,
    preflight,
    with_cors,
)
from kassa_appliance.testbeds.bitrix24.rest import PushBackend, RestApi
from kassa_appliance.testbeds.bitrix24.rest_cashbox import CashboxPortal, cashbox_handlers
from kassa_appliance.testbeds.bitrix24.rest_crm import crm_handlers
from kassa_appliance.testbeds.bitrix24.rest_crm_state import CrmPortal
from kassa_appliance.testbeds.bitrix24.rest_events import OfflineEvents, event_handlers
from kassa_appliance.testbeds.bitrix24.rest_im import NotificationLog, im_handlers
from kassa_appliance.testbeds.bitrix24.rest_imbot import imbot_handlers
from kassa_appliance.testbeds.bitrix24.rest_portal import PortalExtras, portal_handlers
from kassa_appliance.testbeds.bitrix24.rest_users import user_handlers
from kassa_appliance.testbeds.bitrix24.state import ADMIN_USER_ID, PortalState
from kassa_appliance.testbeds.bitrix24.web import MAX_BODY_BYTES, Request, Response, WebServer

log = logging.getLogger(__name__)

_WEBHOOK_PATH = re.compile(r"^/rest/(\d+)/([^/]+)/([^/]+)$")
_REST_PATH = re.compile(r"^/rest/([^/]+)$")
SAVE_INTERVAL = 0.5


class Emulator:
    def __init__(
        self,
        *,
        state: PortalState | None = None,
        state_file: Path | None = None,
        access_ttl: float | None = None,
        push: PushBackend | None = None,
        host: str = "127.0.0.1",
        max_body_bytes: int = MAX_BODY_BYTES,
        limits: LimitProfile | str | None = None,
        app_dist: Path | None = None,
    ) -> None:
        """``limits``: a :class:`LimitProfile` or a profile name (``standard``,
        ``enterprise``, ``test``); None takes :func:`limits.default_profile`.
        ``app_dist``: the built Kassa app (``app/dist`` or its ZIP) the portal page hosts;
        None takes :func:`portal_page.default_app_dist`."""
        if state is None and state_file is not None and state_file.exists():
            state = PortalState.load(state_file, access_ttl=access_ttl)
        if state is None:
            state = PortalState(access_ttl=access_ttl if access_ttl is not None else 3600.0)
        self.state = state
        self.state_file = state_file
        self.host = host
        self.faults = Faults()
        if isinstance(limits, str):
            limits = profile_named(limits)
        self.limits = PortalLimits(limits or default_profile())
        self.api = RestApi(state, push, self.limits)
        self.portal_extras = PortalExtras()
        self.api.add_methods(portal_handlers(self.portal_extras))
        self.api.add_methods(user_handlers(self.state, self.portal_extras.company))
        self.notifications = NotificationLog()
        self.api.add_methods(im_handlers(self.state, self.notifications))
        self.events = OfflineEvents()  # offline event queue (rest_events)
        self.crm = CrmPortal(self.events)  # deals, rows, timeline, payments (rest_crm*)
        self.api.add_methods(event_handlers(self.events))
        self.api.add_methods(crm_handlers(self.crm))
        self.api.add_methods(imbot_handlers(self.state))
        self.cashbox = CashboxPortal()  # REST cashbox + catalog VAT (rest_cashbox)
        self.api.add_methods(cashbox_handlers(self.cashbox))
        self.frames = FrameHost(state)
        self.portal_page = PortalPage(self.frames, AppFiles(app_dist or default_app_dist()))
        self._http = WebServer(self._handle, max_body_bytes=max_body_bytes)
        self._saver: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """The portal base URL (``bitrix.portal``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def max_body_bytes(self) -> int:
        """Request bodies over this get HTTP 413, like a web server in front of a portal."""
        return self._http.max_body_bytes

    @max_body_bytes.setter
    def max_body_bytes(self, limit: int) -> None:
        self._http.max_body_bytes = limit

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth/token/"

    def set_push(self, push: PushBackend | None) -> None:
        self.api.push = push

    async def start(self, port: int = 0) -> None:
        self.port = await self._http.start(self.host, port)
        self.frames.portal_url = self.url
        if self.state_file is not None:
            self.state.save(self.state_file)
            self._saver = asyncio.create_task(self._save_periodically())

    async def stop(self) -> None:
        await self._http.stop()
        if self._saver is not None:
            self._saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._saver
            self._saver = None
        if self.state_file is not None:
            self.state.save(self.state_file)

    async def __aenter__(self) -> Emulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def credentials(self, user_id: int = ADMIN_USER_ID) -> dict[str, Any]:
        """A fresh pairing for ``user_id``: what the daemon's ``bitrix.*`` settings need."""
        return {
            "portal": self.url,
            "client_id": self.state.client_id,
            "client_secret": self.state.client_secret,
            "refresh_token": self.state.issue_refresh_token(user_id),
            "token_url": self.token_url,
            "user_id": user_id,
        }

    def webhook_url(self, user_id: int = ADMIN_USER_ID) -> str:
        return f"{self.url}/rest/{user_id}/{self.state.issue_webhook(user_id)}/"

    async def _save_periodically(self) -> None:
        assert self.state_file is not None
        while True:
            await asyncio.sleep(SAVE_INTERVAL)
            if self.state.dirty:
                try:
                    self.state.save(self.state_file)
                except OSError:
                    log.exception("could not save emulator state")

    # -- HTTP dispatch -----------------------------------------------------------------

    def portal_page_url(self, user_id: int = ADMIN_USER_ID) -> str:
        """Where a browser opens the Kassa app in this portal, as ``user_id``."""
        return self.portal_page.url(user_id)

    async def _handle(self, request: Request) -> Response | None:
        path = request.path
        if path.startswith(("/_portal", "/_app/")):
            return self.portal_page.handle(request)
        if not path.startswith("/rest/"):
            return await self._route(request)
        if request.method == "OPTIONS":
            return preflight(request)
        response = await self._route(request)
        return with_cors(request, response) if response is not None else None

    async def _route(self, request: Request) -> Response | None:
        path = request.path
        if path.startswith("/_emulator/"):
            return self._control(request)
        try:
            params = _request_params(request)
        except ValueError as exc:
            return Response.json(400, {"error": "INVALID_REQUEST", "error_description": str(exc)})
        if path.rstrip("/") == "/oauth/token":
            return await self._faulted("oauth/token", lambda: self._token(params))
        if path.startswith("/rest/") and not self.limits.admit(request.peer):
            return Response.json(QUERY_LIMIT_STATUS, QUERY_LIMIT_BODY)
        webhook = _WEBHOOK_PATH.match(path)
        if webhook:
            user, code, method = webhook.groups()
            return await self._faulted(
                method.lower(), lambda: self._rest(method, params, (int(user), code))
            )
        plain = _REST_PATH.match(path)
        if plain:
            method = plain.group(1)
            return await self._faulted(method.lower(), lambda: self._rest(method, params, None))
        return Response.json(404, {"error": "NOT_FOUND", "error_description": f"no route {path}"})

    async def _faulted(self, method: str, answer: Any) -> Response | None:
        if self.faults.active:
            decision = self.faults.decide(method.removesuffix(".json"))
            if decision.latency:
                await asyncio.sleep(decision.latency)
            if decision.action == "drop":
                return None
            if decision.action == "drop_answer":  # the server acts, the answer is lost
                await answer()
                return None
            if decision.action == "rate_limit":
                return Response.json(QUERY_LIMIT_STATUS, QUERY_LIMIT_BODY)
            if decision.action == "error500":
                return Response.json(
                    500,
                    {
                        "error": "INTERNAL_SERVER_ERROR",
                        "error_description": "Internal server error",
                    },
                )
        response: Response = await answer()
        return response

    async def _token(self, params: dict[str, Any]) -> Response:
        status, body = token_endpoint(self.state, params, self.url)
        return Response.json(status, body)

    async def _rest(
        self, method: str, params: dict[str, Any], webhook: tuple[int, str] | None
    ) -> Response:
        status, body = await self.api.handle(method, params, webhook)
        return Response.json(status, body)

    def _control(self, request: Request) -> Response:
        action = request.path.removeprefix("/_emulator/").strip("/")
        try:
            data = json.loads(request.body) if request.body else {}
            if not isinstance(data, dict):
                raise ValueError("control body must be a JSON object")
            if action == "faults" and request.method == "POST":
                if data.get("clear"):
                    self.faults.clear()
                else:
                    self.faults.add_from_json(data)
                return Response.json(200, {"ok": True})
            if action == "expire-tokens" and request.method == "POST":
                self.state.expire_access_tokens()
                return Response.json(200, {"ok": True})
            if action == "pairing" and request.method == "POST":
                return Response.json(200, self.credentials(int(data.get("user_id", ADMIN_USER_ID))))
            if action == "limits" and request.method == "POST":
                profile = self.limits.profile
                if "profile" in data:
                    profile = profile_named(str(data.pop("profile")))
                self.limits.configure(profile.with_changes(data))
                return Response.json(200, self.limits.snapshot())
            if action == "stats":
                return Response.json(
                    200,
                    {
                        "calls": self.api.calls,
                        "published": len(self.api.published),
                        "refreshes": self.state.refresh_count,
                        "faults_fired": self.faults.fired,
                        "items": {c: len(e.items) for c, e in self.state.entities.items()},
                        "limits": self.limits.snapshot(),
                    },
                )
        except (ValueError, TypeError) as exc:
            return Response.json(400, {"error": "BAD_CONTROL", "error_description": str(exc)})
        return Response.json(404, {"error": "NOT_FOUND", "error_description": action})


def _request_params(request: Request) -> dict[str, Any]:
    params: dict[str, Any] = parse_query(request.query) if request.query else {}
    if request.body:
        content_type = request.headers.get("content-type", "")
        if "json" in content_type:
            body = json.loads(request.body)
            if not isinstance(body, dict):
                raise ValueError("JSON body must be an object")
            params.update(body)
        else:
            params.update(parse_query(request.body.decode("utf-8")))
    return params


def oauth_credentials(pairing: dict[str, Any]) -> OAuthCredentials:
    """The OAuth settings in a pairing from :meth:`Emulator.credentials` (or its JSON file)."""
    return OAuthCredentials(
        portal=pairing["portal"],
        client_id=pairing["client_id"],
        client_secret=pairing["client_secret"],
        refresh_token=pairing["refresh_token"],
        token_url=pairing["token_url"],
    )
