"""End to end on a real cluster: a test acting as Bitrix24 (and as a shop's ATOL Online
module) posts checks to two relay processes; one NATS node and one relay are SIGKILLed
mid-run and the appliance daemon is SIGKILLed twice. Every check is printed exactly once
and CHECK_URL / ``report`` answer it DONE with every fiscal field.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx

from kassa_appliance.appliance.daemon import journal_path
from kassa_appliance.bitrix.phpquery import build_query
from kassa_appliance.channels.relay.wire import FISCAL_FIELDS
from kassa_appliance.fiscal.journal import JobState, Journal
from kassa_appliance.registers.factory import simulator_state_dir
from kassa_appliance.registers.simulator_state import load_state
from kassa_relay.b24_checks import CHECK_TYPES
from relay_cluster import (
    NatsCluster,
    RelayDaemon,
    RelayProcess,
    kassa_password,
    register,
    start_relays,
)

FINISH_TIMEOUT = 120.0
FORM = {"content-type": "application/x-www-form-urlencoded"}
RELAY_OPTIONS = ("--rate", "1000", "--burst", "2000")


def b24_check(number: int, kind: str, secret: str) -> dict[str, Any]:
    price = f"{100 + number}.50"
    return {
        "type": kind,
        "calculated": "income",
        "unique_id": str(number),
        "uuid": f"check|shop-a.bitrix24.ru|{number}",
        "date_create": str(int(time.time())),
        "total_sum": price,
        "client_email": "buyer@example.ru",
        "items": [
            {
                "name": f"Товар {number}",
                "base_price": price,
                "price": price,
                "sum": price,
                "quantity": "1",
                "currency": "RUB",
                "measure_code": "796",
                "vat": "3",
                "vat_sum": "0",
                "payment_object": "commodity",
            }
        ],
        "payments": [{"type": "cashless", "is_cash": "N", "sum": price, "currency": "RUB"}],
        "cashbox_params": {"RELAY": {"KASSA": "k1", "SECRET": secret}},
    }


def post_until_accepted(
    relays: list[RelayProcess], first: int, path: str, verify: Any, **request: Any
) -> httpx.Response:
    """What Bitrix24 (or a shop module) does: try again, on another instance, until the
    relay confirms. Returns the accepting answer."""
    deadline = time.monotonic() + 60
    attempt = first
    while time.monotonic() < deadline:
        relay = relays[attempt % len(relays)]
        attempt += 1
        try:
            answer = httpx.post(relay.url + path, verify=verify, timeout=15, **request)
        except httpx.HTTPError:
            continue
        if (
            answer.status_code == 200
            and "ERRORS" not in answer.json()
            and not (answer.json().get("error"))
        ):
            return answer
        time.sleep(0.3)
    raise AssertionError(f"no relay accepted {path}")


def wait_all(predicate: Any, keys: list[str], what: str) -> dict[str, Any]:
    deadline = time.monotonic() + FINISH_TIMEOUT
    answers: dict[str, Any] = {}
    while time.monotonic() < deadline:
        for key in keys:
            if key not in answers:
                answer = predicate(key)
                if answer is not None:
                    answers[key] = answer
        if len(answers) == len(keys):
            return answers
        time.sleep(0.5)
    missing = sorted(set(keys) - set(answers))
    raise AssertionError(f"{len(missing)} {what} never finished, e.g. {missing[:3]}")


def printed_once(data_dir: Path, job_ids: set[str], refused: set[str] = frozenset()) -> None:
    journal = Journal(journal_path(data_dir))
    try:
        every = [job for job in journal.all_jobs() if job.source == "relay"]
    finally:
        journal.close()
    # the journal scopes relay checks: relay:<check id> (never a Bitrix24 outbox id)
    assert all(job.id.startswith("relay:") for job in every)
    checks = {job.id.removeprefix("relay:"): job for job in every}
    assert len(checks) == len(every)
    assert sorted(checks) == sorted(job_ids | refused), "a check lost or doubled"
    assert {check for check, job in checks.items() if job.state is JobState.FAILED} == refused
    jobs = [job for check, job in checks.items() if check not in refused]
    assert {job.state for job in jobs} == {JobState.FISCALIZED}
    numbers = [job.result["fiscalParams"]["fiscalDocumentNumber"] for job in jobs if job.result]
    assert len(set(numbers)) == len(job_ids), "two checks claim one fiscal document"
    state = load_state(simulator_state_dir(data_dir))
    assert state is not None
    receipts = sum(
        state.document_counts.get(kind, 0)
        for kind in ("sell", "sellReturn", "buy", "buyReturn", "sellCorrection", "buyCorrection")
    )
    assert receipts == len(job_ids), f"{receipts} receipts on the register for {len(job_ids)}"


def test_bitrix24_checks_print_exactly_once_through_node_relay_and_daemon_kills(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    nats_cluster.ensure_all_up()
    verify = nats_cluster.pki.client_context()
    secret = register(nats_cluster, tmp_path, "shop-a", "k1", "--vat", "3=20", "--vat", "1=none")
    relays = start_relays(nats_cluster, tmp_path, 2, *RELAY_OPTIONS)
    data_dir = tmp_path / "appliance"
    data_dir.mkdir()
    daemon = RelayDaemon(data_dir, nats_cluster, "shop-a", "k1")
    daemon.start()
    kinds = list(CHECK_TYPES)
    uuids: dict[str, str] = {}
    try:
        for number in range(2 * len(kinds)):
            check = b24_check(number, kinds[number % len(kinds)], secret)
            body = build_query(check)
            answer = post_until_accepted(
                relays, number, "/b24/shop-a/print", verify, content=body, headers=FORM
            )
            uuids[check["uuid"]] = answer.json()["UUID"]
            if number % 5 == 0:  # Bitrix24 sends a check again: same UUID, printed once
                again = post_until_accepted(
                    relays, number + 1, "/b24/shop-a/print", verify, content=body, headers=FORM
                )
                assert again.json()["UUID"] == uuids[check["uuid"]]
            if number == 6:
                nats_cluster.kill(1)
            if number == 10:
                relays[1].kill()
            if number in (14, 24):
                daemon.kill()
                daemon.start()

        # A check the relay passes on but the register's rules refuse (total below the sum)
        bad = b24_check(999, "sell", secret)
        bad["total_sum"] = "5.00"
        bad_uuid = post_until_accepted(
            relays, 0, "/b24/shop-a/print", verify, content=build_query(bad), headers=FORM
        ).json()["UUID"]

        def final(uuid: str) -> dict[str, Any] | None:
            answer = httpx.post(
                relays[0].url + "/b24/shop-a/check",
                data={"uuid": uuid},
                verify=verify,
                timeout=10.0,  # the relay answers WAIT within ~2 s even during an election
            ).json()
            return answer if answer["STATUS"] != "WAIT" else None

        refusal = wait_all(final, [bad_uuid], "refused checks")[bad_uuid]
        assert refusal["STATUS"] == "ERROR" and "total" in refusal["ERROR"], refusal
        done = final

        answers = wait_all(done, list(uuids.values()), "checks")
        for uuid, answer in answers.items():
            assert answer["STATUS"] == "DONE" and answer["UUID"] == uuid
            assert all(answer[name] for name in FISCAL_FIELDS), answer
        assert daemon.terminate() == 0
        printed_once(data_dir, set(uuids), {bad["uuid"]})
        logs = [relay.log for relay in relays] + [data_dir / "daemon.log"]
        for log in logs:
            text = log.read_text()
            assert secret not in text and kassa_password("shop-a", "k1") not in text
    finally:
        daemon.terminate()
        for relay in relays:
            relay.stop()
        nats_cluster.ensure_all_up()


class _Callbacks(BaseHTTPRequestHandler):
    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def atol_receipt(number: int, operation: str, callback: str) -> dict[str, Any]:
    price = 50 + number
    receipt: dict[str, Any] = {
        "client": {"email": "buyer@example.ru"},
        "company": {
            "email": "shop@example.ru",
            "sno": "osn",
            "inn": "7700000000",
            "payment_address": "https://shop.example.ru",
        },
        "items": [
            {
                "name": f"Позиция {number}",
                "price": price,
                "quantity": 1,
                "sum": price,
                "measure": 0,
                "payment_method": "full_payment",
                "payment_object": 1,
                "vat": {"type": "vat20"},
            }
        ],
        "payments": [{"type": 1, "sum": price}],
        "total": price,
    }
    body: dict[str, Any] = {
        "external_id": f"order-{number}",
        "service": {"callback_url": callback},
        "timestamp": "01.12.2026 12:00:00",
    }
    if operation.endswith("correction"):
        receipt["correction_info"] = {"type": "self", "base_date": "01.12.2026", "base_number": ""}
        body["correction"] = receipt
    else:
        body["receipt"] = receipt
    return body


def test_atol_online_checks_print_exactly_once_through_node_relay_and_daemon_kills(
    nats_cluster: NatsCluster, tmp_path: Path
) -> None:
    nats_cluster.ensure_all_up()
    verify = nats_cluster.pki.client_context()
    register(nats_cluster, tmp_path, "shop-b", "k1", atol_login="shopb")
    relays = start_relays(nats_cluster, tmp_path, 2, *RELAY_OPTIONS)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Callbacks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    callback = f"http://127.0.0.1:{server.server_address[1]}/atol-callback"
    data_dir = tmp_path / "appliance"
    data_dir.mkdir()
    daemon = RelayDaemon(data_dir, nats_cluster, "shop-b", "k1")
    daemon.start()
    operations = ["sell", "sell_refund", "buy", "buy_refund", "sell_correction", "buy_correction"]
    uuids: dict[str, str] = {}
    try:
        token = post_until_accepted(
            relays,
            0,
            "/possystem/v5/getToken",
            verify,
            json={"login": "shopb", "pass": "shopb-password"},
        ).json()["token"]
        headers = {"Token": token}
        for number in range(18):
            operation = operations[number % len(operations)]
            body = atol_receipt(number, operation, callback)
            path = f"/possystem/v5/k1/{operation}"
            answer = post_until_accepted(relays, number, path, verify, json=body, headers=headers)
            uuids[body["external_id"]] = answer.json()["uuid"]
            if number % 4 == 0:  # the module sends the same external_id again
                again = post_until_accepted(
                    relays, number + 1, path, verify, json=body, headers=headers
                )
                assert again.json()["uuid"] == uuids[body["external_id"]]
            if number == 4:
                nats_cluster.kill(2)
            if number == 7:
                relays[0].kill()
            if number in (9, 13):
                daemon.kill()
                daemon.start()

        def done(uuid: str) -> dict[str, Any] | None:
            answer = httpx.get(
                relays[1].url + f"/possystem/v5/k1/report/{uuid}",
                headers=headers,
                verify=verify,
                timeout=10.0,
            ).json()
            return answer if answer["status"] == "done" else None

        reports = wait_all(done, list(uuids.values()), "ATOL Online documents")
        for uuid, report in reports.items():
            assert report["uuid"] == uuid and report["error"] is None
            payload = report["payload"]
            assert payload["fiscal_document_number"] and payload["fn_number"]
            assert payload["fiscal_document_attribute"] and payload["ecr_registration_number"]
        wait_all(
            lambda uuid: uuid if any(r["uuid"] == uuid for r in _Callbacks.received) else None,
            list(uuids.values()),
            "callbacks",
        )
        assert daemon.terminate() == 0
        printed_once(data_dir, set(uuids.values()))
    finally:
        server.shutdown()
        daemon.terminate()
        for relay in relays:
            relay.stop()
        nats_cluster.ensure_all_up()
