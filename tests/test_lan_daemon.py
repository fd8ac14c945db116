"""The LAN API in the real daemon process, on the simulator, over loopback HTTP.

What real open-source clients send (atol-notes §3.1–§3.2, peers-notes §1.1): the v2 and the
legacy paths, uuids of any shape (1C GUIDs in braces, order numbers, Cyrillic, ``#``, ``/``
and spaces), ``request`` as a single object, polling every 300 ms while ``inProgress``
(F-Lab ``AtolWebRequestsDriver.cs``), the 1C module's ``/stat/requests``. Then the
guarantees: a request survives SIGKILL of the daemon in the middle of printing and its
receipt is printed once; the allow-list lets only its addresses in without credentials
(and ``status`` says so); TLS with a provided certificate.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from kassa_appliance.appliance.daemon import read_status_file
from lan_support import AUTH, DEADLINE, LanDaemon
from sample_tasks import sell


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[LanDaemon]:
    appliance = LanDaemon(tmp_path / "data", print_delay="0.3")
    appliance.start()
    try:
        yield appliance
    finally:
        appliance.stop()


def wait_final(client: httpx.Client, path: str, timeout: float = DEADLINE) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(path)
        assert response.status_code == 200, response.text
        entry: dict[str, Any] = response.json()["results"][0]
        if entry["status"] not in ("wait", "inProgress", "blocked"):
            return entry
        assert time.monotonic() < deadline, f"{path} never finished: {entry}"
        time.sleep(0.05)


UUIDS = [
    "{8F3A6C2E-1B4D-4E5F-9A7B-0C1D2E3F4A5B}",
    "order-000123",
    "Заказ №45 от 1.12",
    "a#2",
    "with space/and slash",
    "100%",
]


def test_real_client_shapes_v2_and_legacy(daemon: LanDaemon) -> None:
    with httpx.Client(base_url=daemon.base, auth=AUTH, timeout=20) as client:
        for number, request_uuid in enumerate(UUIDS):
            legacy = number % 2 == 1
            path = "/requests/" if legacy else "/api/v2/requests"
            task = sell(f"{10 + number}.00")  # a single object, not a list
            answer = client.post(path, json={"uuid": request_uuid, "request": task})
            assert answer.status_code == 201, answer.text
            assert answer.json()["uuid"] == request_uuid
        statuses: set[str] = set()
        for number, request_uuid in enumerate(UUIDS):
            prefix = "" if number % 2 else "/api/v2"
            url = f"{prefix}/requests/{quote(request_uuid, safe='')}"
            deadline = time.monotonic() + DEADLINE
            while True:  # polling every 300 ms, like F-Lab's driver
                entry = client.get(url).json()["results"][0]
                statuses.add(entry["status"])
                if entry["status"] == "ready":
                    break
                assert time.monotonic() < deadline
                time.sleep(0.3)
            assert entry["result"]["fiscalParams"]["total"] == 10 + number
        assert "inProgress" in statuses or "wait" in statuses
        stat = client.get("/stat/requests").json()
        assert stat["ready_count"] == len(UUIDS) and stat["is_blocked"] is False
    assert daemon.sells == len(UUIDS)


def test_sigkill_mid_print_prints_the_receipt_once(daemon: LanDaemon) -> None:
    with httpx.Client(base_url=daemon.base, auth=AUTH, timeout=20) as client:
        client.post("/api/v2/requests", json={"uuid": "kill-1", "request": [sell("99.00")]})
        deadline = time.monotonic() + DEADLINE
        while client.get("/api/v2/requests/kill-1").json()["results"][0]["status"] != "inProgress":
            assert time.monotonic() < deadline, "the receipt never started"
            time.sleep(0.01)
    daemon.kill()
    daemon.start()
    with httpx.Client(base_url=daemon.base, auth=AUTH, timeout=20) as client:
        entry = wait_final(client, "/api/v2/requests/kill-1")
        assert entry["status"] == "ready"
        again = client.post("/api/v2/requests", json={"uuid": "kill-1", "request": [sell()]})
        assert again.status_code == 409
    assert daemon.sells == 1


def test_allow_list_stands_in_for_auth_and_is_warned_about(tmp_path: Path) -> None:
    appliance = LanDaemon(
        tmp_path / "data", username=None, password=None, trusted_clients=["127.0.0.1"]
    )
    appliance.start()
    try:
        with httpx.Client(base_url=appliance.base, timeout=20) as client:
            answer = client.post("/api/v2/requests", json={"uuid": "t1", "request": sell()})
            assert answer.status_code == 201
            assert wait_final(client, "/api/v2/requests/t1")["status"] == "ready"
        lan = (read_status_file(appliance.data_dir) or {})["lan"]
        assert "127.0.0.1" in lan["warning"] and lan["auth"] == "none"
    finally:
        appliance.stop()


def test_tls_with_a_provided_certificate(tmp_path: Path) -> None:
    cert, key = tmp_path / "lan.crt", tmp_path / "lan.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    appliance = LanDaemon(tmp_path / "data", tls_cert=str(cert), tls_key=str(key))
    appliance.start()
    try:
        base = appliance.base.replace("http://", "https://")
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=base, auth=AUTH, verify=trust, timeout=20) as client:
            assert client.get("/api/v2/serverInfo").status_code == 200
            assert (
                client.post("/api/v2/requests", json={"uuid": "s1", "request": sell()}).status_code
                == 201
            )
            assert wait_final(client, "/api/v2/requests/s1")["status"] == "ready"
        with pytest.raises(httpx.ConnectError), httpx.Client(base_url=base, timeout=5) as bad:
            bad.get("/api/v2/serverInfo")  # an unknown certificate is refused: TLS verified
        status = read_status_file(appliance.data_dir) or {}
        assert status["lan"]["listening"][0].startswith("https://")
        assert "Very-Secret" not in json.dumps(status)
    finally:
        appliance.stop()
