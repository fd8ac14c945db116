"""The emulated REST methods, with Bitrix24's answer and error shapes: dispatch.

Only what the appliance and its producers use: ``entity.*`` storages and items (FILTER,
SORT, 50-per-page ``start`` pagination with ``next``/``total``), ``batch``,
``pull.application.config.get``/``event.add``, ``app.info``, ``profile``/``user.current``.
Errors follow the docs: HTTP status plus ``{"error", "error_description"}``.

This module owns the entry point: the method table, the auth check (OAuth tokens and
inbound webhooks), per-method call counting, ``batch`` and the ``time`` block, plus the
small ``app.info``/``profile`` methods. The rest lives in ``rest_entity`` (``entity.*``),
``rest_query`` (FILTER/SORT), ``rest_pull`` (``pull.application.*``) and ``rest_types``
(errors, answers, callers); their public names are re-exported here.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from kassa_appliance.bitrix.phpquery import parse_query
from kassa_appliance.testbeds.bitrix24.limits import (
    OPERATION_LIMIT_CODE,
    OPERATION_LIMIT_STATUS,
    OPERATION_LIMIT_TEXT,
    PortalLimits,
    default_profile,
)
from kassa_appliance.testbeds.bitrix24.rest_entity import ENTITY_CODE_MAX, PAGE_SIZE, EntityMethods
from kassa_appliance.testbeds.bitrix24.rest_pull import PullMethods
from kassa_appliance.testbeds.bitrix24.rest_types import (
    Answer,
    ApiError,
    Caller,
    Handler,
    PublishedEvent,
    PushBackend,
)
from kassa_appliance.testbeds.bitrix24.state import PortalState, iso

__all__ = [
    "BATCH_LIMIT",
    "ENTITY_CODE_MAX",
    "PAGE_SIZE",
    "Answer",
    "ApiError",
    "Caller",
    "Handler",
    "PublishedEvent",
    "PushBackend",
    "RestApi",
]

BATCH_LIMIT = 50


def _time_block(
    start: float, operating: float = 0.0, reset_at: float | None = None
) -> dict[str, Any]:
    finish = time.time()
    return {
        "start": start,
        "finish": finish,
        "duration": finish - start,
        "processing": finish - start,
        "date_start": iso(start),
        "date_finish": iso(finish),
        "operating_reset_at": int(reset_at if reset_at is not None else start + 600),
        "operating": operating,
    }


def _operating_key(caller: Caller) -> str:
    """Operating time is kept per application, and per webhook (restdocs ``limits.md``)."""
    return "app" if caller.application else f"webhook:{caller.user.id}"


class RestApi(EntityMethods, PullMethods):
    """The emulated portal's REST surface: one method table over the mixed-in handlers."""

    def __init__(
        self,
        state: PortalState,
        push: PushBackend | None = None,
        limits: PortalLimits | None = None,
    ) -> None:
        self.state = state
        self.limits = limits or PortalLimits(default_profile())
        self.push = push
        self.published: list[PublishedEvent] = []
        self.calls: dict[str, int] = {}
        self._methods: dict[str, Handler] = {
            "app.info": self._app_info,
            "profile": self._profile,
            "user.current": self._profile,
            "entity.add": self._entity_add,
            "entity.get": self._entity_get,
            "entity.item.property.add": self._property_add,
            "entity.item.property.get": self._property_get,
            "entity.item.add": self._item_add,
            "entity.item.get": self._item_get,
            "entity.item.update": self._item_update,
            "entity.item.delete": self._item_delete,
            "pull.application.config.get": self._pull_config,
            "pull.application.event.add": self._pull_event_add,
        }

    def add_methods(self, methods: dict[str, Handler]) -> None:
        """More methods (e.g. ``rest_portal``'s, for the app in the portal page)."""
        self._methods.update(methods)

    # -- entry point ----------------------------------------------------------------------

    def authenticate(self, token: Any, webhook: tuple[int, str] | None) -> Caller:
        state = self.state
        if webhook is not None:
            user_id, code = webhook
            if state.webhooks.get(code) != user_id:
                raise ApiError(401, "NO_AUTH_FOUND", "Wrong authorization data")
            return Caller(state.users[user_id], application=False)
        if not isinstance(token, str) or not token:
            raise ApiError(401, "NO_AUTH_FOUND", "Wrong authorization data")
        access = state.access_tokens.get(token)
        if access is None:
            raise ApiError(401, "invalid_token", "The access token provided is invalid.")
        if access.expires <= state.clock():
            raise ApiError(401, "expired_token", "The access token provided has expired.")
        return Caller(state.users[access.user_id], application=True)

    async def handle(
        self, method: str, params: dict[str, Any], webhook: tuple[int, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        """Run one HTTP-level REST call: (status, JSON body)."""
        start = time.time()
        method = method.lower().removesuffix(".json")
        # The JS SDK marks every call (bx24_request_id, bx24_sdk_ver, bx24_sdk_type); the
        # portal ignores them, so no method may read them as filters or fields.
        for mark in [key for key in params if key.startswith("bx24_")]:
            del params[mark]
        try:
            caller = self.authenticate(params.pop("auth", None), webhook)
            if method == "batch":
                result = await self._batch(caller, params)
            else:
                result = await self._dispatch(caller, method, params)
        except ApiError as exc:
            return exc.status, exc.body()
        body: dict[str, Any] = {"result": result.result}
        if result.next is not None:
            body["next"] = result.next
        if result.total is not None:
            body["total"] = result.total
        if method == "batch":  # the outer batch is not accounted in operating time
            body["time"] = _time_block(start)
        else:
            body["time"] = self._operating_time_block(start, caller, method)
        return 200, body

    async def _dispatch(self, caller: Caller, method: str, params: dict[str, Any]) -> Answer:
        handler = self._methods.get(method)
        if handler is None:
            raise ApiError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        self.calls[method] = self.calls.get(method, 0) + 1
        app = _operating_key(caller)
        operating = self.limits.operating
        if operating.blocked(app, method):
            self.limits.stats.operation_blocked += 1
            raise ApiError(OPERATION_LIMIT_STATUS, OPERATION_LIMIT_CODE, OPERATION_LIMIT_TEXT)
        started = time.perf_counter()
        try:
            return await handler(caller, params)
        finally:
            spent = time.perf_counter() - started + self.limits.cost(method)
            operating.record(app, method, spent)

    def _operating_time_block(self, start: float, caller: Caller, method: str) -> dict[str, Any]:
        app = _operating_key(caller)
        operating = self.limits.operating
        return _time_block(start, operating.used(app, method), operating.reset_at(app, method))

    async def _batch(self, caller: Caller, params: dict[str, Any]) -> Answer:
        cmd = params.get("cmd")
        if isinstance(cmd, list):
            commands = {str(i): c for i, c in enumerate(cmd)}
        elif isinstance(cmd, dict):
            commands = {str(k): c for k, c in cmd.items()}
        else:
            raise ApiError(400, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Batch cmd is empty")
        if len(commands) > BATCH_LIMIT:
            raise ApiError(400, "ERROR_BATCH_LENGTH_EXCEEDED", "Max batch length exceeded")
        halt = str(params.get("halt", "0")) in {"1", "true", "Y"}
        results: dict[str, Any] = {}
        errors: dict[str, Any] = {}
        totals: dict[str, Any] = {}
        nexts: dict[str, Any] = {}
        times: dict[str, Any] = {}
        for key, command in commands.items():
            start = time.time()
            split = urlsplit(str(command))
            sub_method = split.path.lower().removesuffix(".json")
            sub_params = parse_query(split.query)
            try:
                if sub_method == "batch":
                    raise ApiError(
                        405, "ERROR_BATCH_METHOD_NOT_ALLOWED", "Method is not allowed for batch"
                    )
                answer = await self._dispatch(caller, sub_method, sub_params)
            except ApiError as exc:
                errors[key] = exc.body()
                if halt:
                    break
                continue
            results[key] = answer.result
            if answer.total is not None:
                totals[key] = answer.total
            if answer.next is not None:
                nexts[key] = answer.next
            times[key] = self._operating_time_block(start, caller, sub_method)

        def php(section: dict[str, Any]) -> Any:
            return section if section else []  # PHP encodes an empty array as []

        return Answer(
            {
                "result": php(results),
                "result_error": php(errors),
                "result_total": php(totals),
                "result_next": php(nexts),
                "result_time": php(times),
            }
        )

    # -- methods --------------------------------------------------------------------------

    async def _app_info(self, caller: Caller, params: dict[str, Any]) -> Answer:
        self._require_app(caller)
        return Answer(
            {
                "ID": "1",
                "CODE": self.state.client_id,
                "VERSION": 1,
                "STATUS": "L",
                "INSTALLED": True,
                "PAYMENT_EXPIRED": "N",
                "DAYS": None,
                "LICENSE": "ru_project",
            }
        )

    async def _profile(self, caller: Caller, params: dict[str, Any]) -> Answer:
        user = caller.user
        return Answer({"ID": str(user.id), "ADMIN": user.admin, "NAME": user.name})
