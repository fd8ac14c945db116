"""ATOL Online v5 compatible endpoints: ``getToken``, the operations, ``report/{uuid}``.

Mounted at ``/possystem/v5/`` like the real service, so a shop's ATOL Online module needs
only the base URL changed. The group code is the kassa id. See
:mod:`kassa_relay.atol_online` for what we chose where the service is undocumented.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from typing import Any

from aiohttp import web

from kassa_appliance.channels.relay.wire import (
    DIGEST,
    KASSA_ID,
    WIRE_VERSION,
    result_record,
    results_key,
)
from kassa_appliance.inputs import InputRejected, decode_json_bytes
from kassa_appliance.setting_checks import is_loopback, parse_url
from kassa_relay import tokens
from kassa_relay.atol_online import (
    OPERATIONS,
    ReceiptRejected,
    atol_timestamp,
    error_body,
    report,
    request_to_task,
)
from kassa_relay.bus import BusUnavailable
from kassa_relay.defaults import DEFAULT_TOKEN_TTL_SECONDS
from kassa_relay.registry import login_key, password_matches
from kassa_relay.service import RELAY, Relay

MAX_EXTERNAL_ID_LENGTH = 128
MAX_CALLBACK_URL_LENGTH = 256


def _fail(code: int, text: str, status: int = 400, **extra: Any) -> web.Response:
    body = {"error": error_body(code, text), "timestamp": atol_timestamp(), **extra}
    return web.json_response(body, status=status)


async def _json(relay: Relay, request: web.Request) -> dict[str, Any] | web.Response:
    body = await relay.read_body(request)
    try:
        value = decode_json_bytes(body, "request")
    except InputRejected as error:
        relay.count("malformed")
        return _fail(1, str(error))
    if not isinstance(value, dict):
        relay.count("malformed")
        return _fail(1, "request: expected a JSON object")
    return value


async def get_token(request: web.Request) -> web.Response:
    relay = request.app[RELAY]
    if request.method == "GET":
        body: dict[str, Any] | web.Response = dict(request.query)
    else:
        body = await _json(relay, request)
    if isinstance(body, web.Response):
        return body
    login, password = body.get("login"), body.get("pass")
    if not isinstance(login, str) or not isinstance(password, str) or len(login) > 100:
        return _fail(12, "login and pass: expected text", status=400, token=None)
    record = await relay.bus.registry_get(login_key(login))
    tenant = await relay.tenant(record["tenant"]) if record and "tenant" in record else None
    if tenant is None or not tenant.atol_password_hash or len(password) > 200:
        relay.count("unauthenticated")
        return _fail(12, "Неверный логин или пароль (wrong login or password)", 401, token=None)
    if not password_matches(password, tenant.atol_password_hash):
        relay.count("unauthenticated")
        return _fail(12, "Неверный логин или пароль (wrong login or password)", 401, token=None)
    token = tokens.issue(await relay.token_key(), tenant.id, DEFAULT_TOKEN_TTL_SECONDS)
    return web.json_response({"error": None, "token": token, "timestamp": atol_timestamp()})


async def _tenant(relay: Relay, request: web.Request) -> str | web.Response:
    token = request.headers.get("Token") or request.query.get("token") or ""
    tenant = tokens.verify(await relay.token_key(), token)
    if tenant is None:
        relay.count("unauthenticated")
        return _fail(11, "token missing, wrong or expired; get a new one with getToken", 401)
    try:
        wait = await relay.rate_limited(tenant)
    except BusUnavailable:
        relay.count("unavailable")
        response = _fail(30, "temporarily unavailable; send it again", 503)
        response.headers["Retry-After"] = "1"
        return response
    if wait:
        relay.count("rate_limited")
        response = _fail(30, f"too many requests; try again in {wait:.1f} s", 429)
        response.headers["Retry-After"] = str(max(1, round(wait)))
        return response
    return tenant


def _callback(relay: Relay, body: dict[str, Any]) -> str | None:
    service = body.get("service")
    url = service.get("callback_url") if isinstance(service, dict) else None
    if url in (None, ""):
        return None
    if not isinstance(url, str) or len(url) > MAX_CALLBACK_URL_LENGTH:
        raise ReceiptRejected("service.callback_url: expected an http(s) URL")
    try:
        parts = parse_url(url, ("https", "http"))
    except ValueError:
        raise ReceiptRejected("service.callback_url: expected an http(s) URL") from None
    host = (parts.hostname or "").strip("[]")
    if not relay.allow_private_callbacks and (is_loopback(host) or parts.scheme != "https"):
        raise ReceiptRejected("service.callback_url: expected a public https URL")
    return url


def atol_uuid(digest: str) -> str:
    return str(uuidlib.UUID(hex=digest))


async def operation(request: web.Request) -> web.Response:
    relay = request.app[RELAY]
    group, op = request.match_info["group"], request.match_info["operation"]
    if op not in OPERATIONS:
        return _fail(1, f"unknown operation; expected one of {', '.join(OPERATIONS)}", 404)
    tenant = await _tenant(relay, request)
    if isinstance(tenant, web.Response):
        return tenant
    cashbox = await relay.cashbox(tenant, group) if KASSA_ID.fullmatch(group) else None
    if cashbox is None:
        return _fail(4, "unknown group_code; expected the kassa id registered on the relay", 400)
    body = await _json(relay, request)
    if isinstance(body, web.Response):
        return body
    external_id = body.get("external_id")
    if not isinstance(external_id, str) or not 0 < len(external_id) <= MAX_EXTERNAL_ID_LENGTH:
        return _fail(1, f"external_id: expected text of 1 to {MAX_EXTERNAL_ID_LENGTH} characters")
    digest = cashbox.digest(f"atol-online|{external_id}")
    key = results_key(tenant, group, digest)
    check_uuid = atol_uuid(digest)
    answer = {"uuid": check_uuid, "status": "wait", "error": None}
    try:
        if await relay.bus.result(key) is not None:
            relay.count("repeated")
            return web.json_response({**answer, "timestamp": atol_timestamp()})
        task = request_to_task(op, body)
        callback_url = _callback(relay, body)
    except ReceiptRejected as error:
        relay.count("rejected")
        return _fail(1, str(error))
    except BusUnavailable:
        return _fail(30, "temporarily unavailable; send it again", 503)
    if cashbox.payments_address and "paymentsAddress" not in task:
        task["paymentsAddress"] = cashbox.payments_address
    meta = {
        "uuid": check_uuid,
        "external_id": external_id,
        "group_code": group,
        "callback_url": callback_url,
    }
    job = {
        "v": WIRE_VERSION,
        "check": check_uuid,
        "tenant": tenant,
        "kassa": group,
        "key": digest,
        "origin": "atol-online",
        "task": task,
        "cashbox_uuid": None,
        "meta": meta,
        "received_at": time.time(),
    }
    try:
        await relay.bus.publish_job(tenant, group, key, job)
        record = result_record(check=check_uuid, status="wait", callback_url=callback_url)
        record["meta"] = meta
        await relay.bus.create_result(key, record)
    except BusUnavailable:
        relay.count("unavailable")
        return _fail(
            30, "temporarily unavailable (the message bus did not confirm); send again", 503
        )
    relay.count("published")
    return web.json_response({**answer, "timestamp": atol_timestamp()})


async def report_status(request: web.Request) -> web.Response:
    relay = request.app[RELAY]
    group, uuid = request.match_info["group"], request.match_info["uuid"]
    tenant = await _tenant(relay, request)
    if isinstance(tenant, web.Response):
        return tenant
    digest = uuid.replace("-", "").lower()
    if not KASSA_ID.fullmatch(group) or not DIGEST.fullmatch(digest):
        return _fail(34, "no document with this uuid", 404)
    try:
        record = await relay.bus.result(results_key(tenant, group, digest))
    except BusUnavailable:
        return _fail(30, "temporarily unavailable", 503)
    if record is None:
        return _fail(34, "no document with this uuid", 404)
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    body = report(uuid, record, group_code=group, external_id=(meta or {}).get("external_id"))
    return web.json_response(body)
