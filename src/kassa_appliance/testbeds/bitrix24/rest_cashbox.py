"""The emulated REST cashbox methods (b24restdocs ``api-reference/sale/cashbox/``) and the
catalog VAT list (``catalog/vat/catalog-vat-list.md``): ``sale.cashbox.handler.add``
(``ERROR_HANDLER_ALREADY_EXIST`` for a known CODE), ``sale.cashbox.add``,
``sale.cashbox.check.apply`` (by the UUID the PRINT_URL answered; unknown:
``ERROR_CHECK_NOT_FOUND``), ``catalog.vat.list``. The relay tests register the checks the
portal "printed" with :meth:`CashboxPortal.printed` and read :attr:`CashboxPortal.applied`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kassa_appliance.testbeds.bitrix24.rest_types import Answer, ApiError, Caller, Handler

APPLY_FIELDS = (
    "PRINT_END_TIME",
    "REG_NUMBER_KKT",
    "FISCAL_DOC_ATTR",
    "FISCAL_DOC_NUMBER",
    "FISCAL_RECEIPT_NUMBER",
    "FN_NUMBER",
    "SHIFT_NUMBER",
    "STATUS",
    "ERROR",
)


@dataclass
class CashboxPortal:
    handlers: dict[str, dict[str, Any]] = field(default_factory=dict)
    cashboxes: list[dict[str, Any]] = field(default_factory=list)
    checks: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    """EXTERNAL_UUID → the last applied result (None: printed, no result yet)."""
    applied: list[dict[str, Any]] = field(default_factory=list)
    """Every ``sale.cashbox.check.apply`` call, in order."""
    vats: list[dict[str, Any]] = field(
        default_factory=lambda: [
            {"id": 1, "name": "Без НДС", "rate": None},
            {"id": 2, "name": "НДС 0%", "rate": 0},
            {"id": 3, "name": "НДС 20%", "rate": 20},
            {"id": 4, "name": "НДС 10%", "rate": 10},
        ]
    )

    def printed(self, external_uuid: str) -> None:
        self.checks.setdefault(external_uuid, None)


def cashbox_handlers(portal: CashboxPortal) -> dict[str, Handler]:
    async def handler_add(caller: Caller, params: dict[str, Any]) -> Answer:
        code = str(params.get("CODE") or "")
        settings = params.get("SETTINGS")
        if not code or not params.get("NAME") or not isinstance(settings, dict):
            raise ApiError(400, "ERROR_CHECK_FAILURE", "CODE, NAME and SETTINGS are required")
        if not settings.get("PRINT_URL") or not settings.get("CHECK_URL"):
            raise ApiError(400, "ERROR_CHECK_FAILURE", "PRINT_URL and CHECK_URL are required")
        if code in portal.handlers:
            raise ApiError(400, "ERROR_HANDLER_ALREADY_EXIST", f"Handler {code} already exists")
        portal.handlers[code] = dict(params)
        return Answer(len(portal.handlers))

    async def cashbox_add(caller: Caller, params: dict[str, Any]) -> Answer:
        if str(params.get("REST_CODE")) not in portal.handlers:
            raise ApiError(400, "ERROR_CHECK_FAILURE", "REST_CODE: no such handler")
        if not params.get("NAME") or not params.get("EMAIL"):
            raise ApiError(400, "ERROR_CHECK_FAILURE", "NAME and EMAIL are required")
        portal.cashboxes.append(dict(params))
        return Answer(len(portal.cashboxes))

    async def check_apply(caller: Caller, params: dict[str, Any]) -> Answer:
        uuid = params.get("UUID")
        if not uuid:
            raise ApiError(400, "ERROR_CHECK_FAILURE", "UUID is required")
        if uuid not in portal.checks:
            raise ApiError(400, "ERROR_CHECK_NOT_FOUND", f"Check {uuid} not found")
        result = {name: params[name] for name in APPLY_FIELDS if name in params}
        portal.checks[str(uuid)] = result
        portal.applied.append({"UUID": uuid, **result})
        return Answer(True)

    async def vat_list(caller: Caller, params: dict[str, Any]) -> Answer:
        return Answer({"vats": list(portal.vats)}, total=len(portal.vats))

    return {
        "sale.cashbox.handler.add": handler_add,
        "sale.cashbox.add": cashbox_add,
        "sale.cashbox.check.apply": check_apply,
        "catalog.vat.list": vat_list,
    }
