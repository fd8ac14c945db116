"""The REST methods only the Kassa app (in the portal page) uses: placements and a product
catalog.

* ``placement.bind`` / ``placement.get`` / ``placement.unbind`` (b24restdocs
  ``widgets/placement-bind.md``): an admin-only binding of a handler URL to a placement code;
  binding the same code and handler twice answers ``ERROR_PLACEMENT_HANDLER_ALREADY_BINDED``.
* ``crm.product.list`` with a ``%NAME`` filter over :attr:`PortalExtras.products`, and
  ``crm.deal.productrows.get`` over :attr:`PortalExtras.deal_rows` — enough for the
  cashier's catalog search and the deal tab.

Bound into the emulator's method table by :func:`portal_handlers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kassa_appliance.testbeds.bitrix24.rest_types import Answer, ApiError, Caller, Handler
from kassa_appliance.testbeds.bitrix24.rest_users import CompanyStructure

PLACEMENTS = frozenset({"LEFT_MENU", "CRM_DEAL_DETAIL_TAB", "CRM_DEAL_LIST_MENU", "DEFAULT"})


@dataclass
class PortalExtras:
    placements: list[dict[str, str]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"ID": "1", "NAME": "Кофе американо", "PRICE": "150.00"},
            {"ID": "2", "NAME": "Кофе латте", "PRICE": "210.00"},
            {"ID": "3", "NAME": "Круассан", "PRICE": "95.50"},
        ]
    )
    deal_rows: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    company: CompanyStructure = field(default_factory=CompanyStructure)
    """Departments and who is in them (``user.get``/``department.get``, rest_users.py)."""


def portal_handlers(extras: PortalExtras) -> dict[str, Handler]:
    """The method table entries, over ``extras``."""

    async def bind(caller: Caller, params: dict[str, Any]) -> Answer:
        _require_admin(caller)
        placement = str(params.get("PLACEMENT") or "").upper()
        handler = str(params.get("HANDLER") or "")
        if placement not in PLACEMENTS:
            raise ApiError(400, "ERROR_PLACEMENT_NOT_FOUND", f"Placement {placement} not found")
        if not handler.startswith(("http://", "https://")):
            raise ApiError(400, "ERROR_WRONG_HANDLER_URL", "Wrong handler URL")
        if any(p["placement"] == placement and p["handler"] == handler for p in extras.placements):
            raise ApiError(400, "ERROR_PLACEMENT_HANDLER_ALREADY_BINDED", "Handler already binded")
        title = str(params.get("TITLE") or "")
        extras.placements.append({"placement": placement, "handler": handler, "title": title})
        return Answer(True)

    async def get(caller: Caller, params: dict[str, Any]) -> Answer:
        _require_admin(caller)
        return Answer([dict(p) for p in extras.placements])

    async def unbind(caller: Caller, params: dict[str, Any]) -> Answer:
        _require_admin(caller)
        placement = str(params.get("PLACEMENT") or "").upper()
        handler = params.get("HANDLER")
        kept = [
            p
            for p in extras.placements
            if p["placement"] != placement or (handler and p["handler"] != handler)
        ]
        count = len(extras.placements) - len(kept)
        extras.placements[:] = kept
        return Answer({"count": count})

    async def products(caller: Caller, params: dict[str, Any]) -> Answer:
        query = params.get("filter") if isinstance(params.get("filter"), dict) else {}
        needle = str((query or {}).get("%NAME") or "").casefold()
        found = [p for p in extras.products if needle in str(p["NAME"]).casefold()]
        found.sort(key=lambda p: str(p["NAME"]))
        return Answer(found, total=len(found))

    async def deal_rows(caller: Caller, params: dict[str, Any]) -> Answer:
        try:
            deal = int(params.get("id") or params.get("ID") or 0)
        except (TypeError, ValueError):
            raise ApiError(400, "ERROR_ARGUMENT", "id must be a number") from None
        return Answer(extras.deal_rows.get(deal, []))

    return {
        "placement.bind": bind,
        "placement.get": get,
        "placement.unbind": unbind,
        "crm.product.list": products,
        "crm.deal.productrows.get": deal_rows,
    }


def _require_admin(caller: Caller) -> None:
    if not caller.user.admin:
        raise ApiError(403, "ACCESS_DENIED", "Access denied! Admin permissions required")
