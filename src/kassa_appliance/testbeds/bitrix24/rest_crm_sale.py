"""Payments and orders of the emulated CRM, as far as the "payment paid" trigger needs.

bitrix-app-notes §4.1 (b24restdocs ``crm/universal/payment/``, ``sale/payment/``,
``crm/universal/order-entity/``): ``crm.item.payment.add/get/list/pay`` (deals only here),
``sale.payment.get {id}`` (administrator) → ``payment{id, orderId, paid, sum, currency,
isReturn, …}``, ``crm.orderentity.list {filter: {"=orderId"}}`` → the deal that owns the
order. Every save of a payment raises ``ONPAYMENTENTITYSAVED`` ``{"FIELDS": {"ID"}}`` —
not only "paid", so a consumer checks ``paid``.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from kassa_appliance.testbeds.bitrix24.rest_crm_rows import number
from kassa_appliance.testbeds.bitrix24.rest_crm_state import DEAL, CrmPortal, Payment
from kassa_appliance.testbeds.bitrix24.rest_types import Answer, ApiError, Caller, Handler
from kassa_appliance.testbeds.bitrix24.state import iso


def _int(params: dict[str, Any], name: str) -> int:
    try:
        return int(str(params.get(name) or 0))
    except ValueError:
        raise ApiError(400, "INVALID_ARG_VALUE", f"{name} must be a number") from None


def sale_handlers(crm: CrmPortal) -> dict[str, Handler]:
    def payment(params: dict[str, Any]) -> Payment:
        found = crm.payments.get(_int(params, "id"))
        if found is None:
            raise ApiError(400, "NOT_FOUND", "Payment not found")
        return found

    def crm_json(p: Payment) -> dict[str, Any]:
        return {
            "id": p.id,
            "accountNumber": f"{p.order_id}/{p.id}",
            "paid": p.paid,
            "datePaid": iso(p.date_paid) if p.date_paid else None,
            "empPaidId": p.emp_paid_id,
            "paySystemId": p.pay_system_id,
            "sum": number(p.sum),
            "currency": p.currency,
            "paySystemName": p.pay_system_name,
        }

    async def payment_add(caller: Caller, params: dict[str, Any]) -> Answer:
        deal_id = _int(params, "entityId")
        if _int(params, "entityTypeId") != DEAL or deal_id not in crm.deals:
            raise ApiError(400, "NOT_FOUND", "Owner not found")
        raw_fields = params.get("fields")
        fields: dict[str, Any] = raw_fields if isinstance(raw_fields, dict) else {}
        try:
            amount = Decimal(str(fields.get("sum") or crm.opportunity(crm.deals[deal_id])))
        except InvalidOperation:
            raise ApiError(400, "INVALID_ARG_VALUE", "sum must be a number") from None
        return Answer(crm.add_payment(deal_id, amount))

    async def payment_get(caller: Caller, params: dict[str, Any]) -> Answer:
        return Answer(crm_json(payment(params)))

    async def payment_list(caller: Caller, params: dict[str, Any]) -> Answer:
        deal_id = _int(params, "entityId")
        if _int(params, "entityTypeId") != DEAL:
            raise ApiError(400, "INVALID_ARG_VALUE", "Payments exist for deals and invoices only")
        return Answer([crm_json(p) for p in crm.payments.values() if p.deal_id == deal_id])

    async def payment_pay(caller: Caller, params: dict[str, Any]) -> Answer:
        found = payment(params)
        connector = str(params.get("auth_connector") or "") or None
        crm.pay(found.id, user_id=caller.user.id, connector=connector)
        return Answer(True)

    async def sale_payment_get(caller: Caller, params: dict[str, Any]) -> Answer:
        if not caller.user.admin:
            raise ApiError(403, "ACCESS_DENIED", "Access denied")
        p = payment(params)
        return Answer(
            {
                "payment": {
                    "id": p.id,
                    "orderId": p.order_id,
                    "paid": p.paid,
                    "datePaid": iso(p.date_paid) if p.date_paid else None,
                    "sum": number(p.sum),
                    "currency": p.currency,
                    "isReturn": p.is_return,
                    "paySystemId": p.pay_system_id,
                    "paySystemName": p.pay_system_name,
                    "paySystemIsCash": "Y" if p.pay_system_name == "Cash" else "N",
                    "externalPayment": "N",
                }
            }
        )

    async def order_entity_list(caller: Caller, params: dict[str, Any]) -> Answer:
        raw_filter = params.get("filter")
        filters: dict[str, Any] = raw_filter if isinstance(raw_filter, dict) else {}
        wanted = str(filters.get("=orderId") or filters.get("orderId") or "")
        found = {
            p.order_id: p.deal_id
            for p in crm.payments.values()
            if not wanted or str(p.order_id) == wanted
        }
        return Answer(
            {
                "orderEntity": [
                    {"orderId": order, "ownerId": deal, "ownerTypeId": DEAL}
                    for order, deal in sorted(found.items())
                ]
            }
        )

    return {
        "crm.item.payment.add": payment_add,
        "crm.item.payment.get": payment_get,
        "crm.item.payment.list": payment_list,
        "crm.item.payment.pay": payment_pay,
        "sale.payment.get": sale_payment_get,
        "crm.orderentity.list": order_entity_list,
    }
