"""Bitrix24 REST cashbox: ``PRINT_URL`` and ``CHECK_URL`` of one tenant (portal).

Bitrix24 reads the JSON of a 200 answer, so refusals are ``{"ERRORS": [reason]}`` with
status 200 (400/401 would only show as "no answer" in the portal); only limits the
transport enforces (413, 429) have their own status, with the same body.

The UUID we answer is ``<kassa>:<digest>``: the digest is an HMAC of Bitrix24's check uuid
under the cashbox's own key, so it names the check in the results bucket, cannot be
guessed, and is the same for the same check (a re-sent check gets the same UUID and is not
printed again). ``CHECK_URL`` carries no secret (Bitrix24 sends only the uuid): the UUID
itself is the capability.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from kassa_appliance.channels.relay.wire import (
    DIGEST,
    KASSA_ID,
    STATUS_DONE,
    STATUS_ERROR,
    STATUS_WAIT,
    TENANT_ID,
    WIRE_VERSION,
    result_record,
    results_key,
)
from kassa_appliance.inputs import shorten
from kassa_relay.b24_checks import CheckRejected, check_to_task
from kassa_relay.bus import BusUnavailable
from kassa_relay.registry import secret_digest, secret_matches
from kassa_relay.service import RELAY, BodyRejected, Relay, log

SETTINGS_SECTION = "RELAY"
"""The handler's CONFIG section whose items (KASSA, SECRET) Bitrix24 sends back in
``cashbox_params`` with every check."""
MAX_CHECK_UUID_LENGTH = 200
_DUMMY_DIGEST = secret_digest("no such cashbox")
UNAVAILABLE = (
    "the relay could not store the check right now (the message bus did not confirm it); "
    "nothing was printed, send it again"
)


def errors(*reasons: str, status: int = 200) -> web.Response:
    return web.json_response({"ERRORS": list(reasons)}, status=status)


def _section(params: Any) -> dict[str, Any]:
    if not isinstance(params, dict):
        return {}
    for name, section in params.items():
        if isinstance(name, str) and name.upper() == SETTINGS_SECTION and isinstance(section, dict):
            return {str(k).upper(): v for k, v in section.items()}
    return {}


async def _admitted(
    relay: Relay, request: web.Request
) -> tuple[str, dict[str, Any]] | web.Response:
    tenant = request.match_info["tenant"]
    if not TENANT_ID.fullmatch(tenant):
        return errors("unknown tenant in the URL; expected the PRINT_URL the relay gave you")
    try:
        wait = await relay.rate_limited(tenant)
    except BusUnavailable:
        relay.count("unavailable")
        response = errors(UNAVAILABLE, status=503)
        response.headers["Retry-After"] = "1"
        return response
    if wait:
        relay.count("rate_limited")
        response = errors(f"too many requests; try again in {wait:.1f} s", status=429)
        response.headers["Retry-After"] = str(max(1, round(wait)))
        return response
    body = await relay.read_body(request)
    try:
        return tenant, relay.form(body, request.content_type)
    except BodyRejected as error:
        relay.count("malformed")
        return errors(str(error))


async def print_check(request: web.Request) -> web.Response:
    relay = request.app[RELAY]
    admitted = await _admitted(relay, request)
    if isinstance(admitted, web.Response):
        return admitted
    tenant, check = admitted
    section = _section(check.get("cashbox_params"))
    kassa, secret = section.get("KASSA"), section.get("SECRET")
    if not isinstance(kassa, str) or not isinstance(secret, str) or not KASSA_ID.fullmatch(kassa):
        relay.count("unauthenticated")
        return errors(
            "cashbox_params: the cashbox settings carry no kassa id and secret; expected the "
            "values `kassa-relay cashbox register` printed (section RELAY: KASSA, SECRET)"
        )
    cashbox = await relay.cashbox(tenant, kassa)
    stored = cashbox.secret_digest if cashbox is not None else _DUMMY_DIGEST
    if not secret_matches(secret, stored) or cashbox is None:
        relay.count("unauthenticated")
        log.warning(
            "PRINT_URL refused for tenant %s kassa %s: unknown cashbox or wrong secret",
            tenant,
            kassa,
        )
        return errors("cashbox not registered on the relay, or its secret is wrong")
    check_uuid = check.get("uuid")
    if not isinstance(check_uuid, str) or not check_uuid or len(check_uuid) > MAX_CHECK_UUID_LENGTH:
        relay.count("malformed")
        return errors(f"uuid: missing or longer than {MAX_CHECK_UUID_LENGTH} characters")
    digest = cashbox.digest(check_uuid)
    answer = f"{kassa}:{digest}"
    key = results_key(tenant, kassa, digest)
    try:
        if await relay.bus.result(key) is not None:
            relay.count("repeated")
            return web.json_response({"UUID": answer})
        task = check_to_task(
            check,
            vat_map=cashbox.vat,
            ffd=cashbox.ffd,
            taxation=cashbox.taxation,
            payments_address=cashbox.payments_address,
        )
    except CheckRejected as error:
        relay.count("rejected")
        return errors(str(error))
    except BusUnavailable:
        return errors(UNAVAILABLE)
    job = {
        "v": WIRE_VERSION,
        "check": check_uuid,
        "tenant": tenant,
        "kassa": kassa,
        "key": digest,
        "origin": "bitrix24",
        "task": task,
        "cashbox_uuid": answer,
        "meta": {"unique_id": str(check.get("unique_id", ""))[:64]},
        "received_at": time.time(),
    }
    try:
        await relay.bus.publish_job(tenant, kassa, key, job)
        await relay.bus.create_result(key, result_record(check=check_uuid, status=STATUS_WAIT))
    except BusUnavailable:
        relay.count("unavailable")
        return errors(UNAVAILABLE)
    relay.count("published")
    return web.json_response({"UUID": answer})


async def check_status(request: web.Request) -> web.Response:
    relay = request.app[RELAY]
    admitted = await _admitted(relay, request)
    if isinstance(admitted, web.Response):
        return admitted
    tenant, body = admitted
    uuid = body.get("uuid", body.get("UUID"))
    if not isinstance(uuid, str) or ":" not in uuid:
        return web.json_response(
            {"STATUS": STATUS_ERROR.upper(), "ERROR": "uuid: missing or not one this relay issued"}
        )
    kassa, _, digest = uuid.partition(":")
    if not KASSA_ID.fullmatch(kassa) or not DIGEST.fullmatch(digest):
        return web.json_response(
            {"STATUS": "ERROR", "ERROR": f"uuid {shorten(uuid, 80)!r} is not one this relay issued"}
        )
    try:
        record = await relay.bus.result(results_key(tenant, kassa, digest))
    except BusUnavailable:
        return web.json_response({"STATUS": "WAIT"})
    if record is None or record.get("status") == STATUS_WAIT:
        return web.json_response({"STATUS": "WAIT"})
    if record.get("status") == STATUS_DONE and isinstance(record.get("fiscal"), dict):
        return web.json_response({"STATUS": "DONE", "UUID": uuid, **record["fiscal"]})
    reason = str(record.get("error") or "the register did not print it")
    return web.json_response({"STATUS": "ERROR", "ERROR": shorten(reason, 500)})
