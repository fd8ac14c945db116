"""The emulated REST methods, with Bitrix24's answer and error shapes.

Only what the appliance and its producers use: ``entity.*`` storages and items (FILTER,
SORT, 50-per-page ``start`` pagination with ``next``/``total``), ``batch``,
``pull.application.config.get``/``event.add``, ``app.info``, ``profile``/``user.current``.
Errors follow the docs: HTTP status plus ``{"error", "error_description"}``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from kassa_appliance.bitrix.phpquery import parse_query
from kassa_appliance.testbeds.bitrix24.state import Entity, Item, PortalState, Property, User, iso

PAGE_SIZE = 50
BATCH_LIMIT = 50
ENTITY_CODE_MAX = 13
_ENTITY_CODE = re.compile(r"^[A-Za-z0-9_]+$")
_COMMAND = re.compile(r"^[\d\w:_|.\-]+$")
_MODULE_ID = re.compile(r"^[a-z0-9._]+$")
_LEVELS = {"R": 1, "W": 2, "X": 3}


class PushBackend(Protocol):
    """What the REST side needs from the push server (``emulator/push.py`` PushServer)."""

    def channel_config(self, user_id: int, *, client_id: str = ...) -> dict[str, Any]:
        """The ``result`` of ``pull.application.config.get`` for this app and user."""
        ...

    async def publish_app_event(
        self,
        command: str,
        params: dict[str, Any],
        *,
        module_id: str = ...,
        user_ids: Iterable[int] | None = ...,
        client_id: str = ...,
    ) -> str:
        """Deliver an app event to the shared channel (None) or the users' channels."""
        ...


class ApiError(Exception):
    def __init__(self, status: int, code: str, description: str, **extra: Any) -> None:
        super().__init__(f"{code}: {description}")
        self.status = status
        self.code = code
        self.description = description
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "error_description": self.description, **self.extra}


@dataclass(frozen=True)
class Caller:
    user: User
    application: bool
    """True for OAuth application tokens, False for inbound webhooks."""


@dataclass
class PublishedEvent:
    user_ids: list[int] | None
    message: dict[str, Any]


@dataclass(frozen=True)
class Answer:
    result: Any
    next: int | None = None
    total: int | None = None


Handler = Callable[[Caller, dict[str, Any]], Awaitable[Answer]]


def _time_block(start: float) -> dict[str, Any]:
    finish = time.time()
    return {
        "start": start,
        "finish": finish,
        "duration": finish - start,
        "processing": finish - start,
        "date_start": iso(start),
        "date_finish": iso(finish),
        "operating_reset_at": int(start) + 600,
        "operating": 0,
    }


class RestApi:
    def __init__(self, state: PortalState, push: PushBackend | None = None) -> None:
        self.state = state
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
        body["time"] = _time_block(start)
        return 200, body

    async def _dispatch(self, caller: Caller, method: str, params: dict[str, Any]) -> Answer:
        handler = self._methods.get(method)
        if handler is None:
            raise ApiError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
        self.calls[method] = self.calls.get(method, 0) + 1
        return await handler(caller, params)

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
            times[key] = _time_block(start)

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

    # -- helpers --------------------------------------------------------------------------

    @staticmethod
    def _require_app(caller: Caller) -> None:
        if not caller.application:
            raise ApiError(403, "ACCESS_DENIED", "Access denied! Application context required")

    def _entity(self, caller: Caller, params: dict[str, Any]) -> Entity:
        self._require_app(caller)
        code = _entity_code(params)
        entity = self.state.entities.get(code)
        if entity is None:
            raise ApiError(400, "ERROR_ENTITY_NOT_FOUND", "Entity not found")
        return entity

    @staticmethod
    def _check_level(caller: Caller, entity: Entity, needed: str) -> None:
        if caller.user.admin:
            return
        level = max(
            _LEVELS.get(entity.access.get(f"U{caller.user.id}", ""), 0),
            _LEVELS.get(entity.access.get("AU", ""), 0),
        )
        if level < _LEVELS[needed]:
            raise ApiError(403, "ACCESS_DENIED", "Access denied!")

    @staticmethod
    def _item_json(entity: Entity, item: Item) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ID": str(item.id),
            "TIMESTAMP_X": iso(item.timestamp_x),
            "MODIFIED_BY": str(item.modified_by),
            "DATE_CREATE": iso(item.date_create),
            "CREATED_BY": str(item.created_by),
            "ACTIVE": item.active,
            "DATE_ACTIVE_FROM": "",
            "DATE_ACTIVE_TO": "",
            "SORT": str(item.sort),
            "NAME": item.name,
            "PREVIEW_PICTURE": None,
            "PREVIEW_TEXT": None,
            "DETAIL_PICTURE": None,
            "DETAIL_TEXT": None,
            "CODE": item.code,
            "ENTITY": entity.code,
            "SECTION": None if item.section is None else str(item.section),
        }
        if entity.properties:
            data["PROPERTY_VALUES"] = {
                code: item.properties.get(code) for code in entity.properties
            }
        return data

    @staticmethod
    def _property_values(entity: Entity, raw: Any) -> dict[str, str | None]:
        if raw in (None, "", []):
            return {}
        if not isinstance(raw, dict):
            raise ApiError(400, "ERROR_ARGUMENT", "PROPERTY_VALUES must be an object")
        values: dict[str, str | None] = {}
        for code, value in raw.items():
            if code not in entity.properties:
                continue  # "Only properties that exist in the storage are processed."
            if isinstance(value, dict | list):
                raise ApiError(
                    400,
                    "ERROR_ARGUMENT",
                    f"Field validation errors for the item: property {code} must be a scalar",
                )
            values[code] = None if value is None else _scalar_text(value)
        return values

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

    async def _entity_add(self, caller: Caller, params: dict[str, Any]) -> Answer:
        self._require_app(caller)
        code = _entity_code(params, new=True)
        if code in self.state.entities:
            raise ApiError(400, "ERROR_ENTITY_ALREADY_EXISTS", "Entity already exists")
        access_raw = params.get("ACCESS") or {}
        access = {
            str(k): str(v)
            for k, v in (access_raw.items() if isinstance(access_raw, dict) else [])
            if str(v) in _LEVELS
        }
        access[f"U{caller.user.id}"] = "X"
        self.state.entities[code] = Entity(
            self.state.new_id(), code, str(params.get("NAME") or code), access
        )
        self.state.dirty = True
        return Answer(True)

    async def _entity_get(self, caller: Caller, params: dict[str, Any]) -> Answer:
        self._require_app(caller)

        def describe(entity: Entity) -> dict[str, Any]:
            return {
                "ID": str(entity.id),
                "IBLOCK_TYPE_ID": "rest_entity",
                "ENTITY": entity.code,
                "NAME": entity.name,
            }

        if params.get("ENTITY"):
            return Answer(describe(self._entity(caller, params)))
        return Answer([describe(e) for e in self.state.entities.values()])

    async def _property_add(self, caller: Caller, params: dict[str, Any]) -> Answer:
        entity = self._entity(caller, params)
        self._check_level(caller, entity, "X")
        code = str(params.get("PROPERTY") or "").strip()
        if not code:
            raise ApiError(
                400, "ERROR_ARGUMENT", "Argument 'PROPERTY' is null or empty", argument="PROPERTY"
            )
        if code[0].isdigit():
            raise ApiError(400, "ERROR_CORE", "Property code cannot start with a digit")
        kind = str(params.get("TYPE") or "S")
        if kind == "L":
            raise ApiError(400, "ERROR_UNSUPPORTED_PROPERTY_TYPE", "Invalid property type")
        if kind not in {"S", "N", "F"}:
            raise ApiError(400, "ERROR_ARGUMENT", "Wrong entity item property type")
        if code in entity.properties:
            raise ApiError(400, "ERROR_PROPERTY_ALREADY_EXISTS", "Property already exists")
        entity.properties[code] = Property(
            code, str(params.get("NAME") or code), kind, int(params.get("SORT") or 500)
        )
        self.state.dirty = True
        return Answer(True)

    async def _property_get(self, caller: Caller, params: dict[str, Any]) -> Answer:
        entity = self._entity(caller, params)

        def describe(prop: Property) -> dict[str, Any]:
            return {
                "PROPERTY": prop.code,
                "NAME": prop.name,
                "TYPE": prop.type,
                "SORT": str(prop.sort),
            }

        wanted = params.get("PROPERTY")
        if wanted:
            prop = entity.properties.get(str(wanted))
            if prop is None:
                raise ApiError(400, "ERROR_PROPERTY_NOT_FOUND", "Property not found")
            return Answer(describe(prop))
        return Answer([describe(p) for p in entity.properties.values()])

    async def _item_add(self, caller: Caller, params: dict[str, Any]) -> Answer:
        entity = self._entity(caller, params)
        self._check_level(caller, entity, "W")
        now = self.state.clock()
        item = Item(
            id=self.state.new_id(),
            name=str(params.get("NAME") or ""),
            created_by=caller.user.id,
            modified_by=caller.user.id,
            date_create=now,
            timestamp_x=now,
            properties=self._property_values(entity, params.get("PROPERTY_VALUES")),
            section=int(params["SECTION"]) if params.get("SECTION") else None,
            code=str(params["CODE"]) if params.get("CODE") else None,
        )
        entity.items[item.id] = item
        self.state.dirty = True
        return Answer(item.id)

    async def _item_update(self, caller: Caller, params: dict[str, Any]) -> Answer:
        entity = self._entity(caller, params)
        self._check_level(caller, entity, "W")
        item = self._item_by_id(entity, params)
        if "NAME" in params:
            item.name = str(params["NAME"])
        item.properties.update(self._property_values(entity, params.get("PROPERTY_VALUES")))
        item.modified_by = caller.user.id
        item.timestamp_x = self.state.clock()
        self.state.dirty = True
        return Answer(True)

    async def _item_delete(self, caller: Caller, params: dict[str, Any]) -> Answer:
        entity = self._entity(caller, params)
        self._check_level(caller, entity, "W")
        item = self._item_by_id(entity, params)
        del entity.items[item.id]
        self.state.dirty = True
        return Answer(True)

    @staticmethod
    def _item_by_id(entity: Entity, params: dict[str, Any]) -> Item:
        raw = params.get("ID")
        try:
            item_id = int(str(raw))
        except ValueError:
            raise ApiError(
                400, "ERROR_ARGUMENT", "Argument 'ID' is null or empty", argument="ID"
            ) from None
        item = entity.items.get(item_id)
        if item is None:
            raise ApiError(400, "ERROR_ITEM_NOT_FOUND", "Item not found")
        return item

    async def _item_get(self, caller: Caller, params: dict[str, Any]) -> Answer:
        entity = self._entity(caller, params)
        self._check_level(caller, entity, "R")
        items = list(entity.items.values())
        raw_filter = params.get("FILTER") or {}
        if not isinstance(raw_filter, dict):
            raise ApiError(400, "ERROR_ARGUMENT", "Filter validator errors")
        for key, value in raw_filter.items():
            items = [i for i in items if _matches(i, str(key), value)]
        raw_sort = params.get("SORT") or {"ID": "ASC"}
        if not isinstance(raw_sort, dict):
            raise ApiError(400, "ERROR_ARGUMENT", "SORT must be an object")
        for field_name, direction in reversed(list(raw_sort.items())):
            items.sort(
                key=_field_sort_key(str(field_name)), reverse=str(direction).upper() == "DESC"
            )
        try:
            start = int(params.get("start") or 0)
        except (TypeError, ValueError):
            start = 0
        total = len(items)
        if start < 0:  # start=-1: no counting, first page only
            return Answer([self._item_json(entity, i) for i in items[:PAGE_SIZE]])
        page = items[start : start + PAGE_SIZE]
        following = start + PAGE_SIZE if start + PAGE_SIZE < total else None
        return Answer([self._item_json(entity, i) for i in page], next=following, total=total)

    async def _pull_config(self, caller: Caller, params: dict[str, Any]) -> Answer:
        _require_application(caller)
        if self.push is None:
            raise ApiError(500, "SERVER_ERROR", "Push & Pull server is not configured")
        return Answer(self.push.channel_config(caller.user.id, client_id=self.state.client_id))

    async def _pull_event_add(self, caller: Caller, params: dict[str, Any]) -> Answer:
        _require_application(caller)
        command = str(params.get("COMMAND") or "")
        if not _COMMAND.match(command):
            raise ApiError(400, "COMMAND_ERROR", "Command format error")
        module_id = str(params.get("MODULE_ID") or "application")
        if not _MODULE_ID.match(module_id):
            raise ApiError(400, "MODULE_ID_ERROR", "Module ID format error")
        raw_params = params.get("PARAMS", {})
        if isinstance(raw_params, str):
            try:
                raw_params = json.loads(raw_params) if raw_params else {}
            except ValueError:
                raise ApiError(400, "PARAMS_ERROR", "Params format error") from None
        if not isinstance(raw_params, dict | list):
            raise ApiError(400, "PARAMS_ERROR", "Params format error")
        user_ids = _user_ids(params.get("USER_ID"))
        if user_ids is not None and not caller.user.admin and user_ids != [caller.user.id]:
            raise ApiError(
                400, "USER_ID_ACCESS_ERROR", "Only admin can send notifications to other channels"
            )
        event_params = (
            raw_params
            if isinstance(raw_params, dict)
            else {str(i): v for i, v in enumerate(raw_params)}
        )
        message = {"module_id": module_id, "command": command, "params": event_params}
        self.published.append(PublishedEvent(user_ids, message))
        if self.push is not None:
            await self.push.publish_app_event(
                command,
                event_params,
                module_id=module_id,
                user_ids=user_ids,
                client_id=self.state.client_id,
            )
        return Answer(True)


def _scalar_text(value: Any) -> str:
    if value is True:
        return "1"
    if value is False:
        return ""
    return str(value)


def _user_ids(raw: Any) -> list[int] | None:
    if raw in (None, ""):
        return None
    values = raw if isinstance(raw, list) else [raw]
    try:
        return [int(v) for v in values]
    except (TypeError, ValueError):
        raise ApiError(400, "USER_ID_ACCESS_ERROR", "USER_ID must be an integer") from None


def _field_sort_key(name: str) -> Callable[[Item], tuple[int, Any]]:
    def key(item: Item) -> tuple[int, Any]:
        return _sort_key(item.field_value(name))

    return key


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, int):
        return (1, value)
    text = str(value)
    if text.lstrip("-").isdigit():
        return (1, int(text))
    return (2, text)


_OPERATORS = ("!><", "><", ">=", "<=", "!=", "!%", ">", "<", "=", "!", "%", "?")


def _compare(actual: Any, expected: Any) -> int:
    left, right = _sort_key(actual), _sort_key(expected)
    if left[0] != right[0]:
        left, right = (2, str(actual or "")), (2, str(expected or ""))
    return (left > right) - (left < right)


def _matches(item: Item, key: str, expected: Any) -> bool:
    op = next((o for o in _OPERATORS if key.startswith(o)), "=")
    name = key[len(op) :] if key.startswith(op) else key
    actual = item.field_value(name.upper())
    options = expected if isinstance(expected, list) else [expected]
    if op in {"=", "!", "!="}:
        hit = any(_compare(actual, o) == 0 for o in options)
        return hit if op == "=" else not hit
    if op in {"%", "!%"}:
        hit = any(str(o).lower() in str(actual or "").lower() for o in options)
        return hit if op == "%" else not hit
    if op in {"><", "!><"} and isinstance(expected, list) and len(expected) == 2:
        inside = _compare(actual, expected[0]) >= 0 and _compare(actual, expected[1]) <= 0
        return inside if op == "><" else not inside
    if op == "?":
        return actual not in (None, "")
    reference = options[0]
    result = _compare(actual, reference)
    return {">": result > 0, ">=": result >= 0, "<": result < 0, "<=": result <= 0}.get(op, False)


def _entity_code(params: dict[str, Any], *, new: bool = False) -> str:
    """The ENTITY argument, checked as Bitrix24 checks it (a new code must also be
    well-formed)."""
    code = str(params.get("ENTITY") or "").strip()
    if not code or (new and not _ENTITY_CODE.match(code)):
        raise ApiError(
            400, "ERROR_ARGUMENT", "Argument 'ENTITY' is null or empty", argument="ENTITY"
        )
    if len(code) > ENTITY_CODE_MAX:
        raise ApiError(
            400,
            "ERROR_ARGUMENT",
            f"Entity code is too long. Max length is {ENTITY_CODE_MAX} characters.",
            argument="",
        )
    return code


def _require_application(caller: Caller) -> None:
    """pull.application.* answer a webhook (or any non-application) call like the portal."""
    if not caller.application:
        raise ApiError(
            403,
            "WRONG_AUTH_TYPE",
            "Get access to application config available only for application authorization.",
        )
