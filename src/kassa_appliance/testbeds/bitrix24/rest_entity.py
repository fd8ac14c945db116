"""The ``entity.*`` and ``entity.item.*`` methods: storages, properties and items.

Owns ``entity.add``/``entity.get``, ``entity.item.property.add``/``.get`` and
``entity.item.add``/``.get``/``.update``/``.delete`` with the portal's access levels
(R/W/X), argument checks, item JSON shape and 50-per-page ``start`` pagination with
``next``/``total``. FILTER/SORT semantics live in ``rest_query``. Mixed into
``rest.RestApi``, which supplies ``state``.
"""

from __future__ import annotations

import re
from typing import Any

from kassa_appliance.testbeds.bitrix24.rest_query import _field_sort_key, _matches
from kassa_appliance.testbeds.bitrix24.rest_types import Answer, ApiError, Caller
from kassa_appliance.testbeds.bitrix24.state import Entity, Item, PortalState, Property, iso

PAGE_SIZE = 50
ENTITY_CODE_MAX = 13
_ENTITY_CODE = re.compile(r"^[A-Za-z0-9_]+$")
_LEVELS = {"R": 1, "W": 2, "X": 3}


class EntityMethods:
    """Handlers for the ``entity.*`` family (bound into ``RestApi``'s method table)."""

    state: PortalState

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


def _scalar_text(value: Any) -> str:
    if value is True:
        return "1"
    if value is False:
        return ""
    return str(value)


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
