"""The emulated ``crm.*`` methods the automation uses, over :class:`CrmPortal`.

Deals, contacts and companies through ``crm.item.get/list/update`` (camelCase fields,
``useOriginalUfNames``), product rows (``crm.item.productrow.list/set``), pipelines and
stages (``crm.category.list``, ``crm.status.list``), timeline comments
(``crm.timeline.comment.add/list``), deal user fields (``crm.deal.userfield.add/list``).
Payments and orders are in ``rest_crm_sale``. Answer shapes and error codes as in
b24restdocs ``api-reference/crm/``. A change made with ``auth_connector`` is not queued
for that connector's offline queue (``rest_events``).
"""

from __future__ import annotations

import re
from typing import Any

from kassa_appliance.testbeds.bitrix24.rest_crm_sale import sale_handlers
from kassa_appliance.testbeds.bitrix24.rest_crm_state import (
    COMPANY,
    CONTACT,
    DEAL,
    Comment,
    CrmPortal,
    UserField,
    camel_uf,
)
from kassa_appliance.testbeds.bitrix24.rest_types import Answer, ApiError, Caller, Handler
from kassa_appliance.testbeds.bitrix24.state import iso

PAGE_SIZE = 50
_UF_NAME = re.compile(r"^[A-Z0-9_]+$")
MAX_UF_NAME = 50


def integer(params: dict[str, Any], *names: str) -> int:
    for name in names:
        raw = params.get(name)
        if raw not in (None, ""):
            try:
                return int(str(raw))
            except ValueError:
                raise ApiError(400, "INVALID_ARG_VALUE", f"{name} must be a number") from None
    return 0


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return list(value.values())
    return value if isinstance(value, list) else []


def paged(rows: list[Any], params: dict[str, Any]) -> tuple[list[Any], int | None]:
    start = max(0, integer(params, "start"))
    page = rows[start : start + PAGE_SIZE]
    return page, (start + PAGE_SIZE if start + PAGE_SIZE < len(rows) else None)


def crm_handlers(crm: CrmPortal) -> dict[str, Handler]:
    """The ``crm.*`` (and ``sale.*``) methods over ``crm``."""

    def original_names(params: dict[str, Any]) -> bool:
        return str(params.get("useOriginalUfNames") or "N").upper() in {"Y", "1", "TRUE"}

    def item_json(entity_type_id: int, item_id: int, params: dict[str, Any]) -> dict[str, Any]:
        if entity_type_id == DEAL:
            deal = crm.deals.get(item_id)
            if deal is None:
                raise ApiError(400, "NOT_FOUND", "Element not found")
            return crm.deal_json(deal, original_uf_names=original_names(params))
        if entity_type_id in (CONTACT, COMPANY):
            party = crm.party(entity_type_id, item_id)
            if party is None:
                raise ApiError(400, "NOT_FOUND", "Element not found")
            return crm.party_json(party)
        raise ApiError(400, "NOT_FOUND", "Smart process not found")

    async def item_get(caller: Caller, params: dict[str, Any]) -> Answer:
        entity_type_id = integer(params, "entityTypeId")
        return Answer({"item": item_json(entity_type_id, integer(params, "id"), params)})

    async def item_list(caller: Caller, params: dict[str, Any]) -> Answer:
        entity_type_id = integer(params, "entityTypeId")
        filters = mapping(params.get("filter"))
        if entity_type_id == DEAL:
            ids = sorted(crm.deals)
        else:
            ids = sorted(p.id for p in crm.parties.values() if p.entity_type_id == entity_type_id)
        items = [item_json(entity_type_id, i, params) for i in ids]
        for key, expected in filters.items():
            name = key.lstrip("=")
            items = [i for i in items if str(i.get(name)) == str(expected)]
        page, more = paged(items, params)
        return Answer({"items": page}, next=more, total=len(items))

    async def item_update(caller: Caller, params: dict[str, Any]) -> Answer:
        entity_type_id = integer(params, "entityTypeId")
        item_id = integer(params, "id")
        if entity_type_id != DEAL or item_id not in crm.deals:
            raise ApiError(400, "NOT_FOUND", "Element not found")
        deal = crm.deals[item_id]
        fields = mapping(params.get("fields"))
        original = original_names(params)
        connector = str(params.get("auth_connector") or "") or None
        moved = False
        for key, value in fields.items():
            if key == "stageId":
                if str(value) not in crm.stages:
                    raise ApiError(400, "CRM_FIELD_ERROR_VALUE_NOT_VALID", "Stage not found")
                crm.move_deal(item_id, str(value), user_id=caller.user.id, connector=connector)
                moved = True
                continue
            if key == "title":
                deal.title = str(value)
                continue
            uf = next((n for n in crm.user_fields if key == (n if original else camel_uf(n))), None)
            if uf is not None:
                deal.uf[uf] = value
        if not moved:
            crm.deal_changed(item_id, caller.user.id, connector)
        return Answer({"item": crm.deal_json(deal, original_uf_names=original)})

    def owner(params: dict[str, Any], *, nested: bool) -> int:
        source = mapping(params.get("filter")) if nested else params
        owner_type = str(source.get("=ownerType" if nested else "ownerType") or "")
        owner_id = integer(source, "=ownerId" if nested else "ownerId")
        if not owner_type or not owner_id:
            raise ApiError(400, "INVALID_ARG_VALUE", "ownerType and ownerId are required")
        if owner_type != "D" or owner_id not in crm.deals:
            raise ApiError(400, "NOT_FOUND", "Owner not found")
        return owner_id

    async def productrow_list(caller: Caller, params: dict[str, Any]) -> Answer:
        deal_id = owner(params, nested=True)
        rows = [r.as_json() for r in crm.rows.get(deal_id, [])]
        page, more = paged(rows, params)
        return Answer({"productRows": page}, next=more, total=len(rows))

    async def productrow_set(caller: Caller, params: dict[str, Any]) -> Answer:
        deal_id = owner(params, nested=False)
        rows = [mapping(r) for r in as_list(params.get("productRows"))]
        connector = str(params.get("auth_connector") or "") or None
        made = crm.set_rows(deal_id, rows, user_id=caller.user.id, connector=connector)
        return Answer({"productRows": [r.as_json() for r in made]})

    async def category_list(caller: Caller, params: dict[str, Any]) -> Answer:
        if integer(params, "entityTypeId") != DEAL:
            return Answer({"categories": []})
        categories = [
            {
                "id": cid,
                "name": name,
                "sort": (cid + 1) * 100,
                "entityTypeId": DEAL,
                "isDefault": "Y" if cid == 0 else "N",
            }
            for cid, name in sorted(crm.categories.items())
        ]
        return Answer({"categories": categories})

    async def status_list(caller: Caller, params: dict[str, Any]) -> Answer:
        wanted = str(mapping(params.get("filter")).get("ENTITY_ID") or "")
        out = []
        for number, stage in enumerate(crm.stages.values(), start=1):
            entity = "DEAL_STAGE" if stage.category_id == 0 else f"DEAL_STAGE_{stage.category_id}"
            if wanted and wanted != entity:
                continue
            out.append(
                {
                    "ID": str(number),
                    "ENTITY_ID": entity,
                    "STATUS_ID": stage.status_id,
                    "NAME": stage.name,
                    "SORT": str(stage.sort),
                    "SEMANTICS": stage.semantics if stage.semantics != "P" else None,
                    "CATEGORY_ID": str(stage.category_id),
                    "SYSTEM": "N",
                }
            )
        return Answer(out, total=len(out))

    async def comment_add(caller: Caller, params: dict[str, Any]) -> Answer:
        fields = mapping(params.get("fields"))
        entity_type = str(fields.get("ENTITY_TYPE") or "").lower()
        entity_id = integer(fields, "ENTITY_ID")
        if not entity_type or not entity_id or "COMMENT" not in fields:
            raise ApiError(400, "100", "Required fields are not provided")
        text = str(fields.get("COMMENT") or "")
        if not text.strip():
            raise ApiError(400, "INVALID_ARG_VALUE", "Empty comment")
        if entity_type != "deal" or entity_id not in crm.deals:
            raise ApiError(400, "OWNER_NOT_FOUND", "Owner of the item not found")
        author = integer(fields, "AUTHOR_ID") or caller.user.id
        comment = Comment(crm.next_id("comment"), entity_type, entity_id, author, crm.clock(), text)
        crm.comments[comment.id] = comment
        return Answer(comment.id)

    async def comment_list(caller: Caller, params: dict[str, Any]) -> Answer:
        filters = mapping(params.get("filter"))
        entity_id = integer(filters, "ENTITY_ID")
        entity_type = str(filters.get("ENTITY_TYPE") or "").lower()
        if not entity_id or not entity_type:
            raise ApiError(400, "100", "Required fields are not provided")
        descending = str(mapping(params.get("order")).get("ID") or "ASC").upper() == "DESC"
        found = sorted(
            (
                c
                for c in crm.comments.values()
                if c.entity_id == entity_id and c.entity_type == entity_type
            ),
            key=lambda c: c.id,
            reverse=descending,
        )
        rows = [
            {
                "ID": str(c.id),
                "ENTITY_ID": str(c.entity_id),
                "ENTITY_TYPE": c.entity_type,
                "CREATED": iso(c.created),
                "COMMENT": c.text,
                "AUTHOR_ID": str(c.author_id),
                "FILES": None,
            }
            for c in found
        ]
        page, more = paged(rows, params)
        return Answer(page, next=more, total=len(rows))

    async def userfield_add(caller: Caller, params: dict[str, Any]) -> Answer:
        if not caller.user.admin:
            raise ApiError(403, "ACCESS_DENIED", "Access denied!")
        fields = mapping(params.get("fields"))
        raw = str(fields.get("FIELD_NAME") or "").upper()
        if not raw:
            raise ApiError(400, "", "The 'FIELD_NAME' field is not found.")
        if not fields.get("USER_TYPE_ID"):
            raise ApiError(400, "", "The 'USER_TYPE_ID' field is not found.")
        name = raw if raw.startswith("UF_CRM_") else "UF_CRM_" + raw.removeprefix("UF_")
        if len(name) > MAX_UF_NAME:
            raise ApiError(400, "ERROR_CORE", "Field name is too long (more than 50 characters).")
        if not _UF_NAME.match(name):
            raise ApiError(
                400,
                "ERROR_CORE",
                "Field name contains invalid characters. Allowed characters are: A-Z, 0-9 and _.",
            )
        if name in crm.user_fields:
            raise ApiError(400, "ERROR_CORE", "A field with this code already exists.")
        field = UserField(
            crm.next_id("uf"), name, str(fields["USER_TYPE_ID"]), str(fields.get("LABEL") or "")
        )
        crm.user_fields[name] = field
        return Answer(field.id)

    async def userfield_list(caller: Caller, params: dict[str, Any]) -> Answer:
        wanted = str(mapping(params.get("filter")).get("FIELD_NAME") or "")
        out = [
            {
                "ID": str(f.id),
                "ENTITY_ID": "CRM_DEAL",
                "FIELD_NAME": f.field_name,
                "USER_TYPE_ID": f.user_type_id,
                "EDIT_FORM_LABEL": f.label,
            }
            for f in crm.user_fields.values()
            if not wanted or wanted == f.field_name
        ]
        return Answer(out, total=len(out))

    async def deal_contacts(caller: Caller, params: dict[str, Any]) -> Answer:
        deal = crm.deals.get(integer(params, "id"))
        if deal is None:
            raise ApiError(400, "NOT_FOUND", "Not found")
        return Answer(
            [
                {
                    "CONTACT_ID": c,
                    "SORT": (i + 1) * 10,
                    "ROLE_ID": 0,
                    "IS_PRIMARY": "Y" if i == 0 else "N",
                }
                for i, c in enumerate(deal.contact_ids)
            ]
        )

    return {
        "crm.item.get": item_get,
        "crm.item.list": item_list,
        "crm.item.update": item_update,
        "crm.item.productrow.list": productrow_list,
        "crm.item.productrow.set": productrow_set,
        "crm.category.list": category_list,
        "crm.status.list": status_list,
        "crm.timeline.comment.add": comment_add,
        "crm.timeline.comment.list": comment_list,
        "crm.deal.userfield.add": userfield_add,
        "crm.deal.userfield.list": userfield_list,
        "crm.deal.contact.items.get": deal_contacts,
        **sale_handlers(crm),
    }
