"""The relay's mappings: every Bitrix24 check type and every ATOL Online operation becomes
the right Atol task, one the appliance's own receipt rules accept; VAT ids resolve through
the cashbox's VAT list; marking codes pass through; bad checks are refused with the field
named. No bus here: pure functions."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from kassa_appliance.bitrix.phpquery import build_query, parse_query
from kassa_appliance.fiscal.receipt import parse_task
from kassa_relay import tokens
from kassa_relay.atol_online import OPERATIONS, ReceiptRejected, report, request_to_task
from kassa_relay.b24_checks import CHECK_TYPES, CheckRejected, check_to_task
from kassa_relay.b24_register import vat_map
from kassa_relay.ratelimit import RateLimiter
from kassa_relay.registry import password_hash, password_matches, secret_digest, secret_matches

VAT = {"1": "none", "2": "0", "3": "20", "4": "10"}
EXPECTED = {
    "sell": ("sell", "fullPayment"),
    "sellreturn": ("sellReturn", "fullPayment"),
    "sellreturncash": ("sellReturn", "fullPayment"),
    "advancepayment": ("sell", "advance"),
    "advancereturn": ("sellReturn", "advance"),
    "advancereturncash": ("sellReturn", "advance"),
    "prepayment": ("sell", "prepayment"),
    "prepaymentreturn": ("sellReturn", "prepayment"),
    "prepaymentreturncash": ("sellReturn", "prepayment"),
    "fullprepayment": ("sell", "fullPrepayment"),
    "fullprepaymentreturn": ("sellReturn", "fullPrepayment"),
    "fullprepaymentreturncash": ("sellReturn", "fullPrepayment"),
    "credit": ("sell", "credit"),
    "creditreturn": ("sellReturn", "credit"),
    "creditpayment": ("sell", "creditPayment"),
    "creditpaymentreturn": ("sellReturn", "creditPayment"),
    "creditpaymentreturncash": ("sellReturn", "creditPayment"),
}


def check(kind: str = "sell", **item: Any) -> dict[str, Any]:
    """A check as PRINT_URL receives it: form-encoded, then parsed back."""
    body = {
        "type": kind,
        "uuid": "check|portal.example|7",
        "calculated": "income",
        "total_sum": "240.00",
        "items": [
            {
                "name": "Кофе",
                "price": "120.00",
                "quantity": "2",
                "sum": "240.00",
                "vat": "3",
                "measure_code": "796",
                "payment_object": "commodity",
                **item,
            }
        ],
        "payments": [{"type": "cashless", "sum": "240.00"}],
    }
    return parse_query(build_query(body))


def test_every_documented_check_type_is_mapped() -> None:
    assert set(CHECK_TYPES) == set(EXPECTED)


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_check_type_maps_to_atol_task_the_receipt_rules_accept(kind: str) -> None:
    task = check_to_task(check(kind), vat_map=VAT, ffd="1.2")
    receipt_type, method = EXPECTED[kind]
    assert task["type"] == receipt_type
    assert task["items"][0]["paymentMethod"] == method
    advance = method in {"advance", "prepayment", "fullPrepayment"}
    assert task["items"][0]["tax"]["type"] == ("vat120" if advance else "vat20")
    parse_task(task)  # raises if the appliance would refuse it


def test_consumption_makes_buy_receipts() -> None:
    body = check("sellreturn")
    body["calculated"] = "consumption"
    assert check_to_task(body, vat_map=VAT)["type"] == "buyReturn"


def test_vat_ids_resolve_through_the_registered_list() -> None:
    assert check_to_task(check(vat="1"), vat_map=VAT)["items"][0]["tax"]["type"] == "none"
    assert check_to_task(check(vat="2"), vat_map=VAT)["items"][0]["tax"]["type"] == "vat0"
    assert check_to_task(check(vat="4"), vat_map=VAT)["items"][0]["tax"]["type"] == "vat10"
    with pytest.raises(CheckRejected, match=r"items\[0\]\[vat\]: VAT id 9 is not in"):
        check_to_task(check(vat="9"), vat_map=VAT)


def test_catalog_vat_list_becomes_the_vat_map() -> None:
    vats = [
        {"id": 1, "rate": None},
        {"id": 2, "rate": 0},
        {"id": 3, "rate": 20},
        {"id": 4, "rate": "10.00"},
    ]
    assert vat_map(vats) == VAT


def test_marking_codes_pass_through_for_ffd_12_and_105() -> None:
    code = "010467003301005321gJk6o54AQBJfX\x1d91ffd0\x1d92dGVzdA=="
    task = check_to_task(
        check(payment_object="commodity_marking", marking_code=code), vat_map=VAT, ffd="1.2"
    )
    position = task["items"][0]
    assert position["paymentObject"] == "commodityWithMarking"
    assert base64.b64decode(position["imcParams"]["imc"]).decode() == code
    assert position["imcParams"]["itemEstimatedStatus"] == "itemPieceSold"
    parse_task(task)
    returned = check_to_task(check("sellreturn", marking_code=code), vat_map=VAT, ffd="1.2")
    assert returned["items"][0]["imcParams"]["itemEstimatedStatus"] == "itemPieceReturn"
    old = check_to_task(check(marking_code=code), vat_map=VAT, ffd="1.05")
    assert base64.b64decode(old["items"][0]["nomenclatureCode"]).decode() == code


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"type": "sellcorrection"}, "type"),
        ({"items": None}, "items"),
        ({"payments": [{"type": "bitcoin", "sum": "1"}]}, r"payments\[0\]\[type\]"),
        ({"total_sum": "abc"}, "total_sum"),
    ],
)
def test_bad_checks_are_refused_naming_the_field(change: dict[str, Any], field: str) -> None:
    body = check()
    body.update(change)
    with pytest.raises(CheckRejected, match=f"^{field}"):
        check_to_task(body, vat_map=VAT)


def test_item_fields_are_checked() -> None:
    with pytest.raises(CheckRejected, match=r"items\[0\]\[price\]: .* more than 2 decimal"):
        check_to_task(check(price="1.005"), vat_map=VAT)
    with pytest.raises(CheckRejected, match=r"items\[0\]\[payment_method\]"):
        check_to_task(check(payment_method="barter"), vat_map=VAT)


def atol_body(operation: str) -> dict[str, Any]:
    receipt = {
        "company": {"sno": "usn_income", "payment_address": "https://shop.example.ru"},
        "client": {"phone": "+79990000000"},
        "items": [
            {
                "name": "Книга",
                "price": 300,
                "quantity": 1,
                "sum": 300,
                "measure": 0,
                "payment_method": "full_payment",
                "payment_object": 1,
                "vat": {"type": "none"},
                "mark_code": {"gs1m": "MDEwNDYwNzQyODc1OTkwMjE="},
            }
        ],
        "payments": [{"type": 1, "sum": 300}],
        "total": 300,
    }
    if operation.endswith("correction"):
        receipt["correction_info"] = {
            "type": "instruction",
            "base_date": "30.11.2026",
            "base_number": "17",
        }
        return {"external_id": "x", "correction": receipt}
    return {"external_id": "x", "receipt": receipt}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_atol_online_operations_map_to_atol_tasks(operation: str) -> None:
    task = request_to_task(operation, atol_body(operation))
    assert task["type"] == OPERATIONS[operation]
    assert task["taxationType"] == "usnIncome"
    assert task["items"][0]["imcParams"]["imc"] == "MDEwNDYwNzQyODc1OTkwMjE="
    if operation.endswith("correction"):
        assert task["correctionBaseDate"] == "2026.11.30"
    parse_task(task)


def test_atol_online_refuses_bad_requests() -> None:
    with pytest.raises(ReceiptRejected, match="receipt"):
        request_to_task("sell", {"external_id": "x"})
    body = atol_body("sell")
    body["receipt"]["payments"][0]["type"] = 12
    with pytest.raises(ReceiptRejected, match=r"payments\[0\]\.type"):
        request_to_task("sell", body)


def test_atol_report_from_a_result() -> None:
    record = {
        "status": "done",
        "fiscalParams": {
            "fiscalDocumentNumber": 5,
            "fnNumber": "99",
            "registrationNumber": "12",
            "total": 3.0,
            "fiscalDocumentSign": "777",
        },
    }
    answer = report("u", record, group_code="k1", external_id="e")
    assert answer["status"] == "done" and answer["payload"]["fiscal_document_number"] == 5
    failed = report("u", {"status": "error", "error": "no paper"}, group_code="k1", external_id="e")
    assert failed["status"] == "fail" and "no paper" in failed["error"]["text"]
    assert report("u", None, group_code="k1", external_id="e")["status"] == "wait"


def test_tokens_and_secrets() -> None:
    key = b"k" * 32
    token = tokens.issue(key, "shop-a", 60, now=1000)
    assert tokens.verify(key, token, now=1001) == "shop-a"
    assert tokens.verify(key, token, now=2000) is None
    assert tokens.verify(b"x" * 32, token, now=1001) is None
    assert tokens.verify(key, token.replace("shop-a", "shop-b"), now=1001) is None
    assert secret_matches("s" * 40, secret_digest("s" * 40))
    assert not secret_matches("s" * 39, secret_digest("s" * 40))
    stored = password_hash("pw")
    assert password_matches("pw", stored) and not password_matches("pW", stored)


def test_rate_limiter_per_tenant() -> None:
    limiter = RateLimiter(rate=1.0, burst=3)
    assert [limiter.allow("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.allow("a") > 0
    assert limiter.allow("b") == 0.0


def test_relay_settings_take_tls_servers_only_and_need_credentials() -> None:
    from pydantic import ValidationError

    from kassa_appliance.channels.relay.settings import RelayConfig

    with pytest.raises(ValidationError, match="expected tls://host:port"):
        RelayConfig(servers=("nats://relay.example.ru:4222",))
    with pytest.raises(
        ValidationError, match=r"relay\.servers, relay\.tenant, relay\.password must be set"
    ):
        RelayConfig(enabled=True)
    with pytest.raises(ValidationError, match="lower-case"):
        RelayConfig(tenant="Shop_A")
    config = RelayConfig(
        enabled=True, servers=("tls://n1.example.ru:4222",), tenant="shop-a", password="p" * 20
    )
    assert config.user_for("k1") == "kassa_shop-a_k1"


async def test_the_appliance_refuses_a_server_that_does_not_require_tls() -> None:
    import asyncio

    from kassa_appliance.channels.relay.consumer import NotTls, require_tls

    async def plain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'INFO {"server_id":"x","auth_required":true}\r\n')
        await writer.drain()
        writer.close()

    async def tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b'INFO {"server_id":"x","tls_required":true}\r\n')
        await writer.drain()
        writer.close()

    for handler, refused in ((plain, True), (tls, False)):
        server = await asyncio.start_server(handler, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            if refused:
                with pytest.raises(NotTls):
                    await require_tls(f"tls://127.0.0.1:{port}")
            else:
                await require_tls(f"tls://127.0.0.1:{port}")
        finally:
            server.close()
            await server.wait_closed()
