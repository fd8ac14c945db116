"""The Atol Web Requests compatible API, scenario by scenario.

The scenarios are those of avb56/kktsite-agent ``test/agent.test.js`` (MIT; its server's
behaviour was recorded against the real Web Requests 1.0.4.0), re-implemented here from
their description against our LAN API on the real engine, journal and simulator over
loopback HTTP: 201 and the answer's keys, results with ``Ошибок нет``, a duplicate uuid
409, an unknown uuid 404 with Atol's text, an error interrupting the rest (502), cancelling
a waiting request (200) and a finished one (409), Atol's 400 for a malformed body, the
``operations/query*`` calls, CORS with Private Network Access, auth with ``serverInfo``
open, ``deviceID`` picking the (one) device, device fields, the value dictionary and
settings, and the blocked queue resolved by the FD number (atol-notes §1.7).

Where the appliance differs from Atol on purpose (docs/lan-api.md): a fiscal task whose
connection broke before the document closed is *printed once* after the FD check instead
of failing (the engine's exactly-once rule), and a register that is offline keeps tasks
waiting instead of failing them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from lan_support import InProcessLan, in_process_lan, wait_until
from sample_tasks import sell


@pytest.fixture
async def lan(tmp_path: Path) -> AsyncIterator[InProcessLan]:
    async for stack in in_process_lan(tmp_path):
        yield stack


async def results(lan: InProcessLan, uuid: str, prefix: str = "/api/v2") -> list[dict[str, Any]]:
    response = await lan.client().get(f"{prefix}/requests/{uuid}")
    assert response.status_code == 200, response.text
    entries: list[dict[str, Any]] = response.json()["results"]
    return entries


async def done(lan: InProcessLan, uuid: str) -> list[dict[str, Any]]:
    async def finished() -> list[dict[str, Any]] | None:
        entries = await results(lan, uuid)
        pending = {"wait", "inProgress", "blocked"}
        return None if any(e["status"] in pending for e in entries) else entries

    found: list[dict[str, Any]] = await wait_until(finished, f"request {uuid} done")
    return found


async def queue(lan: InProcessLan) -> dict[str, Any]:
    body: dict[str, Any] = (await lan.client().get("/api/v2/getRequestsQueueStatus")).json()
    return body


async def test_server_info_and_the_default_device(lan: InProcessLan) -> None:
    anonymous = lan.client(auth=None)
    info = await anonymous.get("/api/v2/serverInfo")
    assert info.status_code == 200
    assert {"serverVersion", "driverVersion", "os", "currentDateTime"} <= info.json().keys()
    devices = (await lan.client().get("/api/v2/devices")).json()
    assert [(d["id"], d["isDefault"], d["isActive"]) for d in devices] == [("1", True, True)]
    one = (await lan.client().get("/api/v2/devices/default")).json()
    assert sorted(one) == sorted(
        [
            "connectionSettings",
            "hasLicense",
            "id",
            "isActive",
            "isDefault",
            "isLock",
            "lastError",
            "name",
            "otherSettings",
        ]
    )
    assert one["otherSettings"]["useGlobalScriptsSettings"] is True
    struct = (await anonymous.get("/api/v2/utils/deviceParametersStruct")).json()
    assert struct["id"] == "" and struct["connectionSettings"]["port"] == "usb"


async def test_queue_201_result_duplicate_and_unknown_uuid(lan: InProcessLan) -> None:
    client = lan.client()
    added = await client.post(
        "/api/v2/requests",
        json={"uuid": "u2", "request": [{"type": "getDeviceStatus"}, {"type": "getShiftStatus"}]},
    )
    assert added.status_code == 201
    assert sorted(added.json()) == ["blockReason", "blockedUUID", "isBlocked", "number", "uuid"]
    entries = await done(lan, "u2")
    assert [e["status"] for e in entries] == ["ready", "ready"]
    assert entries[0]["error"] == {"code": 0, "description": "Ошибок нет"}
    assert entries[0]["errorCode"] == 0 and "deviceStatus" in entries[0]["result"]
    duplicate = await client.post("/api/v2/requests", json={"uuid": "u2", "request": {"type": "x"}})
    assert duplicate.status_code == 409
    assert "задание с таким UUID уже есть" in duplicate.json()["error"]["description"]
    unknown = await client.get("/api/v2/requests/nope")
    assert unknown.status_code == 404
    assert (
        unknown.json()["error"]["description"]
        == "Задание с UUID [nope] для устройства [1] не найдено"
    )


async def test_an_error_interrupts_the_rest_which_never_reach_the_register(
    lan: InProcessLan,
) -> None:
    bad_sell = {**sell("10.00"), "payments": [{"type": "cash", "sum": 1.0}]}  # underpaid
    await lan.client().post(
        "/api/v2/requests",
        json={"uuid": "u3", "request": [{"type": "getShiftStatus"}, bad_sell, {"type": "reportX"}]},
    )
    entries = await done(lan, "u3")
    assert [e["status"] for e in entries] == ["ready", "error", "interrupted"]
    assert entries[1]["error"]["code"] != 0
    assert entries[2]["error"] == {
        "code": 502,
        "description": "Выполнение прервано из-за предыдущих ошибок",
    }
    assert lan.journal.get("lan:u3#3") is None, "the interrupted task never became a job"
    assert lan.sells == 0


async def test_cancel_a_waiting_request_but_not_a_finished_one(lan: InProcessLan) -> None:
    client = lan.client()
    lan.device.offline = True  # the queue waits: the request stays `wait`
    await client.post("/api/v2/requests", json={"uuid": "queued", "request": [sell("5.00")]})
    assert [e["status"] for e in await results(lan, "queued")] == ["wait"]
    assert (await client.delete("/api/v2/requests/queued")).status_code == 200
    assert [e["status"] for e in await results(lan, "queued")] == ["canceled"]
    entry = (await results(lan, "queued"))[0]
    assert entry["error"] == {"code": 503, "description": "Задание отменено"}
    lan.device.offline = False
    await client.post("/api/v2/requests", json={"uuid": "fast", "request": [sell("6.00")]})
    await done(lan, "fast")
    late = await client.delete("/api/v2/requests/fast")
    assert late.status_code == 409
    status = await queue(lan)
    assert status["canceled"] == 1 and status["ready"] >= 1 and status["number"] == 0
    assert lan.sells == 1, "the cancelled sell was never printed"


async def test_malformed_bodies_get_atols_400(lan: InProcessLan) -> None:
    client = lan.client()
    missing = await client.post("/api/v2/requests", json={"uuid": "u4"})
    assert missing.status_code == 400
    assert missing.json()["error"]["description"] == "Поле 'request' не задано или пустое"
    assert (await client.post("/api/v2/requests", content=b"{oops")).status_code == 400
    no_uuid = await client.post("/api/v2/requests", json={"request": [{"type": "reportX"}]})
    assert no_uuid.json()["error"]["description"] == "Поле 'uuid' не задано"
    two = await client.post("/api/v2/requests", json={"uuid": "u5", "request": [sell(), sell()]})
    assert two.status_code == 400 and "fiscal" in two.json()["error"]["description"]
    deep = b'{"uuid": "u6", "request": ' + b"[" * 100 + b"]" * 100 + b"}"
    assert (await client.post("/api/v2/requests", content=deep)).status_code == 400
    huge = await client.post("/api/v2/requests", content=b" " * (1024 * 1024 + 1))
    assert huge.status_code == 413 and huge.json()["error"]["description"]
    assert lan.journal.counts_by_state() == {}, "nothing reached the journal"


async def test_operations_run_through_the_queue_and_unknown_ones_are_501(
    lan: InProcessLan,
) -> None:
    client = lan.client()
    shift = await client.post("/api/v2/operations/queryShiftStatus")
    assert shift.status_code == 200 and "shiftStatus" in shift.json()
    assert (await client.post("/api/v2/operations/queryReceiptTotals")).status_code == 501


async def test_cors_and_private_network_access(tmp_path: Path) -> None:
    from lan_support import free_port, lan_config

    port = free_port()
    config = lan_config(port, cors_origins=["https://app.example.ru"])
    async for lan in in_process_lan(tmp_path, config):
        preflight = await lan.client(auth=None).options(
            "/api/v2/requests",
            headers={
                "Origin": "https://app.example.ru",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
                "Access-Control-Request-Private-Network": "true",
            },
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://app.example.ru"
        assert preflight.headers["access-control-allow-private-network"] == "true"
        assert "authorization" in preflight.headers["access-control-allow-headers"]
        other = await lan.client().post(
            "/api/v2/requests",
            headers={"Origin": "https://evil.example"},
            json={"uuid": "c1", "request": sell()},
        )
        assert other.status_code == 403 and lan.journal.get("lan:c1") is None


async def test_auth_is_required_but_server_info_is_open(lan: InProcessLan) -> None:
    anonymous = lan.client(auth=None)
    refused = await anonymous.get("/api/v2/devices")
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Basic")
    assert (await anonymous.get("/api/v2/serverInfo")).status_code == 200
    wrong = lan.client(auth=("kassa1c", "wrong-password"))
    attempt = await wrong.post("/api/v2/requests", json={"uuid": "w1", "request": sell()})
    assert attempt.status_code == 401 and "Very-Secret" not in attempt.text
    assert lan.journal.get("lan:w1") is None
    assert (await anonymous.get("/")).status_code == 401
    assert (await lan.client().get("/")).status_code == 200


async def test_ten_wrong_passwords_lock_that_address_out_even_for_the_right_one(
    lan: InProcessLan,
) -> None:
    """A guesser gets 401 ten times, then 429 with Retry-After — also for the right password,
    so a lucky guess tells nothing; another address (the 1C server) is not affected."""
    guesser = lan.client(
        auth=("kassa1c", "guess"), transport=httpx.AsyncHTTPTransport(local_address="127.0.0.3")
    )
    answers = [(await guesser.get("/api/v2/devices")).status_code for _ in range(10)]
    assert answers == [401] * 10
    locked = await guesser.get("/api/v2/devices")
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    assert "паролей" in locked.json()["error"]["description"]
    right_but_locked = lan.client(transport=httpx.AsyncHTTPTransport(local_address="127.0.0.3"))
    assert (await right_but_locked.get("/api/v2/devices")).status_code == 429
    assert (await lan.client().get("/api/v2/devices")).status_code == 200  # 127.0.0.1


async def test_device_id_picks_the_device_and_activation(lan: InProcessLan) -> None:
    client = lan.client()
    missing = await client.post(
        "/api/v2/requests?deviceID=77", json={"uuid": "d77", "request": {"type": "reportX"}}
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["description"] == "Устройство с ID [77] не найдено"
    assert (await client.post("/api/v2/deactivateDevice?deviceID=1")).status_code == 200
    inactive = await client.post("/api/v2/requests", json={"uuid": "d1", "request": sell()})
    assert (
        inactive.status_code == 409 and "не подключена" in inactive.json()["error"]["description"]
    )
    assert (await client.post("/api/v2/activateDevice", json={"deviceID": "1"})).status_code == 200
    added = await client.post("/api/v2/requests?deviceID=1", json={"uuid": "d1", "request": sell()})
    assert added.status_code == 201
    await done(lan, "d1")
    assert (await client.get("/api/v2/requests/d1?deviceID=2")).status_code == 404
    assert (await client.post("/api/v2/setDefaultDevice", json={})).status_code == 404
    assert (await client.post("/api/v2/setDefaultDevice", json={"id": "1"})).status_code == 200


async def test_mapping_and_settings(lan: InProcessLan) -> None:
    client = lan.client()
    values = (await client.get("/api/v2/utils/mapping")).json()
    assert [v["key"] for v in values["port"]] == ["com", "usb", "tcp", "bluetooth"]
    assert [v["key"] for v in values["ofdChannel"]] == ["none", "auto"]
    assert (await client.get("/api/v2/settings")).json()["deleteRequestsAfter"] == 43200
    bad = await client.put("/api/v2/settings", json={"deleteRequestsAfter": "abc"})
    assert bad.status_code == 400
    assert (
        bad.json()["error"]["description"]
        == "Некорректное значение или тип поля 'deleteRequestsAfter' (string)"
    )
    assert (
        await client.put("/api/v2/settings", json={"deleteRequestsAfter": 60})
    ).status_code == 200
    assert (await client.get("/api/v2/settings")).json()["deleteRequestsAfter"] == 60


async def test_blocked_connection_lost_after_close_is_ready_and_printed_once(
    lan: InProcessLan,
) -> None:
    """kktsite «блокировка: связь оборвалась, документ закрылся»: the queue is blocked on
    b1, a new request is accepted but waits, and once the register answers the FD number
    shows the receipt exists: b1 is ready with its fiscal params, printed once."""
    client = lan.client()
    lan.device.lose_after_next_fiscal = True
    await client.post(
        "/api/v2/requests", json={"uuid": "b1", "request": [sell(), {"type": "reportX"}]}
    )
    await wait_until(lambda: lan.server.queue.block().is_blocked, "the queue blocked")
    status = await queue(lan)
    assert (status["isBlocked"], status["blockReason"], status["blockedUUID"]) == (
        True,
        "connectionError",
        "b1",
    )
    assert [e["status"] for e in await results(lan, "b1")] == ["blocked", "wait"]
    assert (await client.get("/api/v2/devices/1")).json()["isLock"] is True
    following = await client.post(
        "/api/v2/requests", json={"uuid": "b2", "request": {"type": "getShiftStatus"}}
    )
    assert following.status_code == 201 and following.json()["isBlocked"] is True
    assert [e["status"] for e in await results(lan, "b2")] == ["wait"]
    lan.device.offline = False
    await done(lan, "b2")
    entries = await done(lan, "b1")
    assert [e["status"] for e in entries] == ["ready", "ready"]
    fd_now = lan.device.simulator.process({"type": "getFnStatus"})["fnStatus"]
    assert (
        entries[0]["result"]["fiscalParams"]["fiscalDocumentNumber"]
        == (fd_now["fiscalDocumentNumber"])
    )
    assert not (await queue(lan))["isBlocked"]
    assert lan.sells == 1, "the receipt was not printed a second time"


async def test_blocked_connection_lost_before_close_prints_once_after_the_fd_check(
    lan: InProcessLan,
) -> None:
    """kktsite «связь оборвалась до закрытия»: Atol answers ``error`` and the client must
    resend; the appliance's engine knows from the FD number that nothing was printed and
    prints the receipt itself, once (a deliberate difference, docs/lan-api.md)."""
    lan.device.lose_before_next_fiscal = True
    await lan.client().post("/api/v2/requests", json={"uuid": "c1", "request": [sell()]})
    await wait_until(lambda: lan.device.offline, "the connection dropped")
    lan.device.offline = False
    assert [e["status"] for e in await done(lan, "c1")] == ["ready"]
    assert lan.sells == 1


async def test_polling_while_in_progress_and_legacy_paths(lan: InProcessLan) -> None:
    """Clients poll ``GET /requests/{uuid}`` every 300 ms (F-Lab) while ``inProgress``;
    1C before 10.7 posts to ``/requests/`` and reads ``/stat/requests`` (atol-notes §3.1)."""
    client = lan.client()
    lan.device.offline = True
    posted = await client.post("/requests/", json={"uuid": "legacy-1", "request": sell("7.00")})
    assert posted.status_code == 201
    stat = (await client.get("/stat/requests")).json()
    assert stat["not_ready_count"] == 1 and stat["is_blocked"] is False
    seen: set[str] = set()
    lan.device.offline = False
    while True:
        entry = (await results(lan, "legacy-1", prefix=""))[0]
        seen.add(entry["status"])
        if entry["status"] == "ready":
            break
    assert entry["errorCode"] == 0 and entry["errorDescription"] == "Ошибок нет"
    assert entry["result"]["fiscalParams"]["total"] == 7.0
    assert (await client.get("/stat/requests")).json()["ready_count"] == 1
