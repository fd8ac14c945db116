"""The snap hooks (install, configure, post-refresh) against a fake `snapctl` on PATH.

The fake keeps the snap's configuration in a JSON file, parses `set` values the way snapd
does (JSON if it parses, else a string), prints `get -d` documents with only the keys that
are set, and logs every call, so the tests see exactly what a hook asked snapd to do.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kassa_appliance.appliance.config import CONFIG_FILE_NAME, load_config
from kassa_appliance.appliance.daemon import journal_path
from kassa_appliance.appliance.hooks.configure import (
    DRIVER_UNSET_CODE,
    DRIVER_UNSET_HEALTH,
    configure,
)
from kassa_appliance.appliance.hooks.install import seed_defaults
from kassa_appliance.appliance.hooks.post_refresh import MigrationError, post_refresh
from kassa_appliance.appliance.hooks.settings import KEYS_BY_NAME, SNAP_KEYS, InvalidSettings
from kassa_appliance.appliance.hooks.snapctl import Snapctl
from kassa_appliance.fiscal.journal import SCHEMA_VERSION as JOURNAL_SCHEMA
from kassa_appliance.fiscal.journal import Journal

REPO = Path(__file__).resolve().parents[1]
SERVICE = "kassa-appliance.daemon"
SECRET = "Zk3q9VbN7xP2mL5tR8wY"
TOKEN = "4f1b7c2e9a0d3f6b8e5c1a7d2f9b0e3c"
WEBHOOK = "https://example.bitrix24.ru/rest/1/abcdef0123456789/"

FAKE_SNAPCTL = """#!{python} -IS
import json, os, sys
from pathlib import Path

state = Path(os.environ["FAKE_SNAPCTL_DIR"])
store_path = state / "config.json"
store = json.loads(store_path.read_text()) if store_path.exists() else {{}}
args = sys.argv[1:]
with open(state / "calls.jsonl", "a") as log:
    log.write(json.dumps(args) + "\\n")


def lookup(key):
    node = store
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None, False
        node = node[part]
    return node, True


def put(key, value):
    parts = key.split(".")
    node = store
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {{}}
        node = node[part]
    if value is None:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = value


command, rest = args[0], args[1:]
if command == "get":
    keys = [arg for arg in rest if not arg.startswith("-")]
    if not keys:
        sys.exit("error: get which option?")
    found = {{key: value for key in keys for value, ok in [lookup(key)] if ok}}
    if "-d" in rest or len(keys) > 1:
        print(json.dumps(found, indent="\\t"))
    else:
        value = found.get(keys[0], "")
        print(value if isinstance(value, str) else json.dumps(value))
elif command in ("set", "unset"):
    for item in rest:
        if command == "unset" or item.endswith("!"):
            put(item.rstrip("!"), None)
            continue
        key, _, raw = item.partition("=")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        put(key, value)
    store_path.write_text(json.dumps(store))
elif command not in ("restart", "start", "stop", "set-health"):
    sys.exit("error: unknown command " + command)
"""


class FakeSnapd:
    """The test's side of the fake: acts as `snap set` and reads what the hooks did."""

    def __init__(self, state: Path) -> None:
        self.state = state

    @property
    def store(self) -> dict[str, Any]:
        path = self.state / "config.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def snap_set(self, *assignments: str) -> None:
        """Like `snap set kassa-appliance key=value…` (JSON when it parses, else text)."""
        store = self.store
        for assignment in assignments:
            key, _, raw = assignment.partition("=")
            try:
                value: Any = json.loads(raw)
            except ValueError:
                value = raw
            group, sub = key.split(".", 1) if "." in key else (key, None)
            if sub is None:
                store[group] = value
            else:
                if not isinstance(store.get(group), dict):
                    store[group] = {}
                store[group][sub] = value
        (self.state / "config.json").write_text(json.dumps(store))

    def calls(self, command: str | None = None) -> list[list[str]]:
        path = self.state / "calls.jsonl"
        if not path.exists():
            return []
        calls = [json.loads(line) for line in path.read_text().splitlines()]
        return [call for call in calls if command is None or call[0] == command]

    def forget_calls(self) -> None:
        (self.state / "calls.jsonl").unlink(missing_ok=True)


@pytest.fixture
def snapd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSnapd:
    """A fake `snapctl` first on PATH, with an empty configuration."""
    bin_dir = tmp_path / "fakebin"
    bin_dir.mkdir()
    script = bin_dir / "snapctl"
    script.write_text(FAKE_SNAPCTL.format(python=sys.executable), encoding="utf-8")
    script.chmod(0o755)
    state = tmp_path / "snapctl-state"
    state.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SNAPCTL_DIR", str(state))
    return FakeSnapd(state)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "snap-data"
    path.mkdir()
    return path


def run_configure(data_dir: Path) -> tuple[bool, bool]:
    outcome = configure(Snapctl(), data_dir, service=SERVICE)
    return outcome.written, outcome.restarted


def config_json(data_dir: Path) -> dict[str, Any]:
    data = json.loads((data_dir / CONFIG_FILE_NAME).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


# -- configure: every key, valid -----------------------------------------------------------

VALID_VALUES = [
    (
        "bitrix.portal=https://example.bitrix24.ru/",
        "bitrix",
        "portal",
        "https://example.bitrix24.ru",
    ),
    (
        "bitrix.client-id=local.5f1a2b3c4d5e6f.12345678",
        "bitrix",
        "client_id",
        "local.5f1a2b3c4d5e6f.12345678",
    ),
    (f"bitrix.client-secret={SECRET}", "bitrix", "client_secret", SECRET),
    (f"bitrix.refresh-token={TOKEN}", "bitrix", "refresh_token", TOKEN),
    (f"bitrix.webhook={WEBHOOK}", "bitrix", "webhook", WEBHOOK),
    (
        "bitrix.pairing=kp1.eyJwb3J0YWwiOiJodHRwczovL3Nob3AuYml0cml4MjQucnU6ODQ0MyIsImNsaWVudF9pZCI6"
        "ImxvY2FsLjYwYTFiMmMzZDRlNWY2Ljg3NjU0MzIxIiwiY2xpZW50X3NlY3JldCI6IlprM3E5VmJON3hQMm1MNXRS"
        "OHdZenoiLCJyZWZyZXNoX3Rva2VuIjoiNGYxYjdjMmU5YTBkM2Y2YjhlNWMxYTdkMmY5YjBlM2MiLCJrYXNzYSI6"
        "InNob3AtNyJ9",  # app/test/fixtures/pairing-code.json "without_spare"
        "kassa",
        "id",
        "shop-7",
    ),
    ("bitrix.allowed-users=1,17,42", "bitrix", "allowed_users", [1, 17, 42]),
    ("bitrix.allowed-users=42", "bitrix", "allowed_users", [42]),
    ("bitrix.allowed-users=[1, 17, 1]", "bitrix", "allowed_users", [1, 17]),
    ("bitrix.allowed-departments=1,5,5", "bitrix", "allowed_departments", [1, 5]),
    ("bitrix.notify-users=1,17", "bitrix", "notify_users", [1, 17]),
    ("bitrix.rest-rate=0.45", "bitrix", "rest_rate", 0.45),
    ("bitrix.rest-rate=2", "bitrix", "rest_rate", 2.0),
    ('bitrix.rest-rate="1.8"', "bitrix", "rest_rate", 1.8),
    ("bitrix.rest-burst=10", "bitrix", "rest_burst", 10),
    ('bitrix.rest-burst="250"', "bitrix", "rest_burst", 250),
    ("kassa.id=shop-7", "kassa", "id", "shop-7"),
    ("kassa.id=7", "kassa", "id", "7"),
    ("register.driver=fptr10", "register", "driver", "fptr10"),
    ("register.driver=webrequests", "register", "driver", "webrequests"),
    ("register.driver=simulator", "register", "driver", "simulator"),
    ("register.usb-path=1-1.3", "register", "usb_path", "1-1.3"),
    ("register.usb-path=auto", "register", "usb_path", "auto"),
    ("register.usb-path=/dev/ttyACM0", "register", "usb_path", "/dev/ttyACM0"),
    (
        "register.lib-path=/var/snap/kassa-appliance/common/libfptr10.so",
        "register",
        "lib_path",
        "/var/snap/kassa-appliance/common/libfptr10.so",
    ),
    ("register.url=http://192.168.1.50:16732", "register", "url", "http://192.168.1.50:16732"),
    ("register.url=http://127.0.0.1:65535", "register", "url", "http://127.0.0.1:65535"),
    ("register.url=http://[::1]:16732", "register", "url", "http://[::1]:16732"),
    ("register.url=https://atol.local:1/", "register", "url", "https://atol.local:1/"),
    (
        "bitrix.portal=https://example.bitrix24.ru:65535",
        "bitrix",
        "portal",
        "https://example.bitrix24.ru:65535",
    ),
    ("operator.vatin=5.00100732259e11", "operator", "vatin", "500100732259"),
    ("operator.name=Ёлкина Мария-Luísa", "operator", "name", "Ёлкина Мария-Luísa"),
    ("operator.name=Иванова А.В.", "operator", "name", "Иванова А.В."),
    ("operator.vatin=500100732259", "operator", "vatin", "500100732259"),
    ("operator.vatin=7707083893", "operator", "vatin", "7707083893"),
    ("company.taxation=usnIncome", "company", "taxation", "usnIncome"),
    ("shift.auto-open=false", "shift", "auto_open", False),
    ("shift.auto-close=false", "shift", "auto_close", False),
    ("shift.auto-open=true", "shift", "auto_open", True),
    ("log.level=debug", "log", "level", "debug"),
    ("lan.enabled=false", "lan", "enabled", False),
    ("lan.port=16733", "lan", "port", 16733),
    ('lan.port="16733"', "lan", "port", 16733),
    ("lan.kkm-port=0", "lan", "kkm_port", 0),
    ('lan.password="12345678"', "lan", "password", "12345678"),
    ("lan.kkm-port=5893", "lan", "kkm_port", 5893),
    ("lan.bind=192.168.1.10", "lan", "bind", "192.168.1.10"),
    ("lan.username=kassa1c", "lan", "username", "kassa1c"),
    ("lan.password=Very-Secret-42", "lan", "password", "Very-Secret-42"),
    (
        "lan.trusted-clients=192.168.1.20,10.0.0.0/24",
        "lan",
        "trusted_clients",
        ["192.168.1.20", "10.0.0.0/24"],
    ),
    (
        "lan.tls-cert=/var/snap/kassa-appliance/common/lan.crt",
        "lan",
        "tls_cert",
        "/var/snap/kassa-appliance/common/lan.crt",
    ),
    (
        "lan.tls-key=/var/snap/kassa-appliance/common/lan.key",
        "lan",
        "tls_key",
        "/var/snap/kassa-appliance/common/lan.key",
    ),
    (
        "lan.cors-origins=https://shop.example.ru",
        "lan",
        "cors_origins",
        ["https://shop.example.ru"],
    ),
    ("b24bot.enabled=true", "b24bot", "enabled", True),
    ("b24bot.code=kassa_bot_2", "b24bot", "code", "kassa_bot_2"),
    ("b24bot.name=Касса офиса", "b24bot", "name", "Касса офиса"),
    ("b24bot.bot-type=supervisor", "b24bot", "bot_type", "supervisor"),
    ("b24bot.active-poll-seconds=2", "b24bot", "active_poll_seconds", 2.0),
    ("b24bot.idle-poll-seconds=15", "b24bot", "idle_poll_seconds", 15.0),
    ("b24bot.active-window-seconds=600", "b24bot", "active_window_seconds", 600.0),
    (
        "b24bot.cashiers=17=Мастер Иванов И.И.:500100732259,d5=Мастер Петров П.П.",
        "b24bot",
        "cashiers",
        {
            "17": {"name": "Мастер Иванов И.И.", "inn": "500100732259"},
            "d5": {"name": "Мастер Петров П.П.", "inn": None},
        },
    ),
    ("maxbot.enabled=false", "maxbot", "enabled", False),
    ("maxbot.token=f9LHodD0cOJZ0b30xpIJT-0001", "maxbot", "token", "f9LHodD0cOJZ0b30xpIJT-0001"),
    (
        "maxbot.api-url=https://platform-api2.max.ru/",
        "maxbot",
        "api_url",
        "https://platform-api2.max.ru",
    ),
    ("maxbot.poll-timeout=25", "maxbot", "poll_timeout", 25),
    (
        "maxbot.cashiers=4123456=Мастер Иванов И.И.:500100732259",
        "maxbot",
        "cashiers",
        {"4123456": {"name": "Мастер Иванов И.И.", "inn": "500100732259"}},
    ),
    *(
        case
        for group in ("b24bot", "maxbot")
        for case in [
            (
                f"{group}.kassas=office-1, office-2,office-1",
                group,
                "kassas",
                ["office-1", "office-2"],
            ),
            (f"{group}.kassas=7", group, "kassas", ["7"]),
            (f'{group}.kassas=["office-1", "shop_2"]', group, "kassas", ["office-1", "shop_2"]),
            (f"{group}.taxation-type=usnIncome", group, "taxation_type", "usnIncome"),
            (f"{group}.vat=vat22", group, "vat", "vat22"),
            (f"{group}.payment-object=job", group, "payment_object", "job"),
            (
                f"{group}.payments-address=г. Москва, ул. Тверская, д. 1",
                group,
                "payments_address",
                "г. Москва, ул. Тверская, д. 1",
            ),
            (f"{group}.ask-place=false", group, "ask_place", False),
            (
                f"{group}.default-place= г. Москва, ул. Ленина, д. 5 ",
                group,
                "default_place",
                "г. Москва, ул. Ленина, д. 5",
            ),
            (f"{group}.electronic-receipt=never", group, "electronic_receipt", "never"),
        ]
    ),
    ("automation.enabled=true", "automation", "enabled", True),
    ("automation.connector=kassa_shop", "automation", "connector", "kassa_shop"),
    ("automation.connector=7", "automation", "connector", "7"),
    ("automation.poll-seconds=5", "automation", "poll_seconds", 5.0),
    ("automation.fd-field=UF_CRM_FD", "automation", "fd_field", "UF_CRM_FD"),
    ("relay.enabled=false", "relay", "enabled", False),
    (
        "relay.servers=tls://nats1.example.ru:4222,tls://nats2.example.ru:4222",
        "relay",
        "servers",
        ["tls://nats1.example.ru:4222", "tls://nats2.example.ru:4222"],
    ),
    ("relay.tenant=shop-1", "relay", "tenant", "shop-1"),
    ("relay.kassa=kassa-2", "relay", "kassa", "kassa-2"),
    ("relay.kassa=7", "relay", "kassa", "7"),
    ("relay.user=kassa_shop-1_kassa-2", "relay", "user", "kassa_shop-1_kassa-2"),
    ("relay.password=Relay-Secret-0123456789", "relay", "password", "Relay-Secret-0123456789"),
    (
        "relay.ca-file=/var/snap/kassa-appliance/common/relay-ca.pem",
        "relay",
        "ca_file",
        "/var/snap/kassa-appliance/common/relay-ca.pem",
    ),
]


@pytest.mark.parametrize(("assignment", "section", "field", "expected"), VALID_VALUES)
def test_configure_accepts_valid_value(
    snapd: FakeSnapd, data_dir: Path, assignment: str, section: str, field: str, expected: Any
) -> None:
    snapd.snap_set(assignment)
    run_configure(data_dir)
    assert config_json(data_dir)[section][field] == expected
    assert load_config(data_dir, on_device=True) is not None  # the daemon can read it


def test_every_snap_key_has_a_valid_value_case() -> None:
    covered = {assignment.split("=", 1)[0] for assignment, *_ in VALID_VALUES}
    assert covered == {key.name for key in SNAP_KEYS}


def test_configure_without_keys_writes_an_unconfigured_register(
    snapd: FakeSnapd, data_dir: Path
) -> None:
    assert run_configure(data_dir) == (True, False)
    assert config_json(data_dir)["register"]["driver"] is None
    assert config_json(data_dir)["schema"] == 1
    assert snapd.calls("set-health") == [
        ["set-health", "blocked", DRIVER_UNSET_HEALTH, f"--code={DRIVER_UNSET_CODE}"]
    ]
    assert 7 <= len(DRIVER_UNSET_HEALTH) <= 70  # snapd's limits for a health message


def test_config_file_is_private(snapd: FakeSnapd, data_dir: Path) -> None:
    snapd.snap_set(f"bitrix.client-secret={SECRET}", "register.driver=fptr10")
    run_configure(data_dir)
    assert stat.S_IMODE((data_dir / CONFIG_FILE_NAME).stat().st_mode) == 0o600


@pytest.mark.parametrize("assignment", ['log.level=""', "log.level=null"])
def test_empty_or_null_value_means_default(
    snapd: FakeSnapd, data_dir: Path, assignment: str
) -> None:
    snapd.snap_set(assignment)
    run_configure(data_dir)
    assert config_json(data_dir)["log"]["level"] == "info"


# -- configure: every key, invalid, with the exact message ---------------------------------

CONVERSATION_INVALID_VALUES = [
    # the receipt settings both chat bots inherit (appliance/hooks/keys_conversation.py)
    (
        "{group}.kassas=office 1",
        "{group}.kassas: \"office 1\" names 'office 1', which is not a kassa id; expected 1-64 "
        "letters, digits, dashes or underscores starting with a letter or digit "
        "(kassa.id of a kassa)",
    ),
    (
        "{group}.kassas=office-1,,office-2",
        '{group}.kassas: "office-1,,office-2" has an empty kassa id; '
        "expected kassa ids separated by commas, e.g. office-1,office-2",
    ),
    (
        "{group}.kassas=true",
        "{group}.kassas: true is not allowed; "
        "expected kassa ids separated by commas, e.g. office-1,office-2",
    ),
    (
        "{group}.taxation-type=envd",
        '{group}.taxation-type: "envd" is no longer a taxation system (UTII (envd) was '
        "abolished on 2021-01-01); expected one of osn, usnIncome, usnIncomeOutcome, esn, patent",
    ),
    (
        "{group}.taxation-type=usn",
        '{group}.taxation-type: "usn" is not a taxation system (taxationType, tag 1055); '
        "expected one of osn, usnIncome, usnIncomeOutcome, esn, patent",
    ),
    (
        "{group}.vat=vat18",
        '{group}.vat: "vat18" is no longer a VAT rate (VAT 18 % was replaced by 20 % on '
        "2019-01-01); expected one of none, vat0, vat5, vat7, vat10, vat20, vat22, vat105, "
        "vat107, vat110, vat120, vat122",
    ),
    (
        "{group}.vat=20%",
        '{group}.vat: "20%" is not a VAT rate (tax.type of each position); expected one of '
        "none, vat0, vat5, vat7, vat10, vat20, vat22, vat105, vat107, vat110, vat120, vat122",
    ),
    (
        "{group}.payment-object=услуга",
        '{group}.payment-object: "услуга" is not a payment object (paymentObject, tag 1212); '
        "expected an Atol name, e.g. service or job, one of commodity, excise, job, service, "
        "gamblingBet, gamblingPrize, lottery, lotteryPrize, intellectualActivity, payment, "
        "agentCommission, composite, another, proprietaryLaw, nonOperatingIncome, "
        "insuranceContributions, otherContributions, merchantTax, resortFee, deposit, "
        "consumption, soleProprietorCPIContributions, cpiContributions, "
        "soleProprietorCMIContributions, cmiContributions, csiContributions, casinoPayment, "
        "fundsIssuance, exciseWithoutMarking, exciseWithMarking, commodityWithoutMarking, "
        "commodityWithMarking",
    ),
    (
        "{group}.payments-address=   ",
        '{group}.payments-address: "   " is blank; expected the address of settlement '
        "(paymentsAddress, tag 1009), e.g. г. Москва, ул. Тверская, д. 1 (or unset the key)",
    ),
    (
        "{group}.payments-address=" + "д" * 257,
        f'{{group}}.payments-address: "{"д" * 99}…" has 257 characters; expected the address '
        "of settlement (paymentsAddress, tag 1009) of at most 256 characters",
    ),
    (
        "{group}.ask-place=yes",
        '{group}.ask-place: "yes" is not allowed; expected true (ask where the money is taken) '
        "or false (use default-place without asking)",
    ),
    (
        '{group}.default-place="Москва\\tул. Ленина"',
        '{group}.default-place: "Москва\\x09ул. Ленина" holds a control character; expected the '
        "place of settlement (paymentsPlace, tag 1187) on one line of text",
    ),
    (
        "{group}.default-place=42",
        "{group}.default-place: 42 is not allowed; expected the place of settlement "
        "(paymentsPlace, tag 1187) as text, e.g. г. Москва, ул. Ленина, д. 5",
    ),
    (
        "{group}.electronic-receipt=always",
        '{group}.electronic-receipt: "always" is not allowed; '
        "expected ask (ask for the buyer's e-mail or phone) or never",
    ),
]

LAN_INVALID_VALUES = [
    # the LAN API (appliance/hooks/keys_lan.py, channels/lan/settings.py)
    ("lan.enabled=on", 'lan.enabled: "on" is not allowed; expected true or false'),
    ("lan.port=0", "lan.port: 0 is not a port; expected a number from 1 to 65535"),
    ("lan.port=http", 'lan.port: "http" is not a port; expected a number from 1 to 65535'),
    (
        "lan.kkm-port=65536",
        "lan.kkm-port: 65536 is not allowed; expected 0 (no second port) or a port from 1 to "
        "65535, e.g. 5893 (KKMServer's)",
    ),
    (
        "lan.bind=localhost",
        'lan.bind: "localhost" is not an IP address; expected the address to listen on, '
        "e.g. 0.0.0.0 (every interface), 192.168.1.10 or ::",
    ),
    (
        "lan.username=1c:admin",
        "lan.username: \"1c:admin\" holds ':', a space or a control character; "
        "expected a plain name",
    ),
    (
        "lan.username=" + "u" * 65,
        f'lan.username: "{"u" * 65}" is not a user name; expected 1 to 64 characters',
    ),
    ("lan.password=short", "lan.password: value is too short; expected at least 8 characters"),
    (
        "lan.password=12345678",
        "lan.password: value is not text; expected the password as text (a password of digits "
        "only goes in JSON quotes, e.g. lan.password='\"<the digits>\"')",
    ),
    (
        "lan.trusted-clients=192.168.1.20,0.0.0.0/0",
        'lan.trusted-clients: "192.168.1.20,0.0.0.0/0" holds "0.0.0.0/0", which opens the API '
        "to too many addresses; expected the clients' own addresses or a network of at most /8",
    ),
    (
        "lan.trusted-clients=1c-server",
        'lan.trusted-clients: "1c-server" holds "1c-server", which is not an IP address or '
        "network; expected e.g. 192.168.1.20 or 192.168.1.0/24",
    ),
    (
        "lan.tls-cert=lan.crt",
        'lan.tls-cert: "lan.crt" is not an absolute path; '
        "expected e.g. /var/snap/kassa-appliance/common/lan.crt",
    ),
    (
        "lan.tls-key=lan.key",
        'lan.tls-key: "lan.key" is not an absolute path; '
        "expected e.g. /var/snap/kassa-appliance/common/lan.key",
    ),
    (
        "lan.cors-origins=shop.example.ru",
        'lan.cors-origins: "shop.example.ru" holds "shop.example.ru", which is not a page '
        "origin; expected * or e.g. https://shop.example.ru (scheme and host, no path)",
    ),
    (
        "lan.cors-origins=true",
        "lan.cors-origins: true is not allowed; expected comma-separated values, "
        "e.g. https://shop.example.ru",
    ),
]

INVALID_VALUES = [
    (
        "bitrix.portal=http://example.bitrix24.ru",
        'bitrix.portal: "http://example.bitrix24.ru" is not an https URL; '
        "expected e.g. https://example.bitrix24.ru",
    ),
    (
        "bitrix.portal=http://127.0.0.1:8080",
        'bitrix.portal: "http://127.0.0.1:8080" is not an https URL; '
        "expected e.g. https://example.bitrix24.ru",
    ),
    (
        "bitrix.portal=https://example.bitrix24.ru/crm/deal/",
        'bitrix.portal: "https://example.bitrix24.ru/crm/deal/" is not a portal address; '
        "expected e.g. https://example.bitrix24.ru (no path)",
    ),
    (
        "bitrix.client-id=my app",
        'bitrix.client-id: "my app" is not a valid client id; expected the application\'s '
        "client_id, e.g. local.5f1a2b3c4d5e6f.12345678",
    ),
    (
        "bitrix.client-secret=s3cr3t",
        "bitrix.client-secret: value is too short; expected at least 16 characters",
    ),
    (
        "bitrix.client-secret=s3cr3t s3cr3t s3cr3t",
        "bitrix.client-secret: value contains spaces or control characters; "
        "expected the value as issued",
    ),
    (
        "bitrix.refresh-token=t0k3n",
        "bitrix.refresh-token: value is too short; expected at least 16 characters",
    ),
    (
        "bitrix.webhook=https://example.bitrix24.ru/rest/1/",
        "bitrix.webhook: value is not an inbound webhook URL; "
        "expected https://<portal>/rest/<user id>/<code>/",
    ),
    (
        "bitrix.webhook=http://example.bitrix24.ru/rest/1/s3cr3tc0de/",
        "bitrix.webhook: value is not an inbound webhook URL; "
        "expected https://<portal>/rest/<user id>/<code>/",
    ),
    (
        "bitrix.allowed-users=1,x",
        'bitrix.allowed-users: "1,x" is not allowed; '
        "expected comma-separated Bitrix24 user ids, e.g. 1,17,42",
    ),
    (
        "bitrix.allowed-users=0",
        "bitrix.allowed-users: 0 is not allowed; "
        "expected comma-separated Bitrix24 user ids, e.g. 1,17,42",
    ),
    (
        "bitrix.allowed-departments=1,sales",
        'bitrix.allowed-departments: "1,sales" is not allowed; '
        "expected comma-separated Bitrix24 department ids, e.g. 1,5,12",
    ),
    (
        "bitrix.allowed-departments=0",
        "bitrix.allowed-departments: 0 is not allowed; expected positive Bitrix24 department ids",
    ),
    (
        "bitrix.notify-users=1,admin",
        'bitrix.notify-users: "1,admin" is not allowed; '
        "expected comma-separated Bitrix24 user ids, e.g. 1,17,42",
    ),
    (
        "bitrix.pairing=kp1.e30",
        "bitrix.pairing: the code lacks portal, client_id, client_secret, refresh_token, kassa; "
        "expected all of portal, client_id, client_secret, refresh_token, kassa",
    ),
    (
        "bitrix.rest-rate=0",
        "bitrix.rest-rate: 0 is not allowed; expected requests per second above 0 and at most "
        "250, e.g. 1.8 (2/s portals), 0.4 for 4 kassas behind one address",
    ),
    (
        "bitrix.rest-rate=fast",
        'bitrix.rest-rate: "fast" is not allowed; expected requests per second above 0 and at '
        "most 250, e.g. 1.8 (2/s portals), 0.4 for 4 kassas behind one address",
    ),
    (
        "bitrix.rest-burst=2.5",
        "bitrix.rest-burst: 2.5 is not allowed; expected a whole number of requests from 1 to "
        "250, e.g. 40 (portals with a burst of 50)",
    ),
    (
        "bitrix.rest-burst=251",
        "bitrix.rest-burst: 251 is not allowed; expected a whole number of requests from 1 to "
        "250, e.g. 40 (portals with a burst of 50)",
    ),
    (
        "kassa.id=shop one",
        'kassa.id: "shop one" is not allowed; expected 1-64 letters, digits, dashes or '
        "underscores starting with a letter or digit",
    ),
    (
        "register.driver=foo",
        'register.driver: "foo" is not allowed; expected one of simulator, fptr10, webrequests',
    ),
    (
        "register.usb-path=/dev/sda1",
        'register.usb-path: "/dev/sda1" is not allowed; '
        "expected auto, a USB port path such as 1-1.3 or a serial port such as /dev/ttyACM0",
    ),
    (
        "register.lib-path=libfptr10.so",
        'register.lib-path: "libfptr10.so" is not an absolute path; '
        "expected e.g. /var/snap/kassa-appliance/common/libfptr10.so",
    ),
    (
        "register.url=ftp://atol.local",
        'register.url: "ftp://atol.local" is not an http(s) URL; '
        "expected e.g. http://127.0.0.1:16732",
    ),
    (
        "operator.name=" + "Я" * 65,
        f'operator.name: "{"Я" * 65}" is too long; expected at most 64 characters',
    ),
    (
        "operator.vatin=12345",
        "operator.vatin: 12345 is not a valid INN; expected 10 or 12 digits",
    ),
    (
        "operator.vatin=500100732258",
        "operator.vatin: 500100732258 is not a valid INN; its check digits do not match",
    ),
    (
        "operator.vatin=7707083894",
        "operator.vatin: 7707083894 is not a valid INN; its check digits do not match",
    ),
    (
        "register.url=http://127.0.0.1:abc",
        'register.url: "http://127.0.0.1:abc" is not a valid URL: port "abc" is not a number '
        "from 1 to 65535; expected e.g. http://127.0.0.1:16732",
    ),
    (
        "register.url=http://127.0.0.1:99999",
        'register.url: "http://127.0.0.1:99999" is not a valid URL: port 99999 is not a number '
        "from 1 to 65535; expected e.g. http://127.0.0.1:16732",
    ),
    (
        "register.url=http://127.0.0.1:0",
        'register.url: "http://127.0.0.1:0" is not a valid URL: port 0 is not a number '
        "from 1 to 65535; expected e.g. http://127.0.0.1:16732",
    ),
    (
        "register.url=http://999.1.1.1:16732",
        'register.url: "http://999.1.1.1:16732" is not a valid URL: the host 999.1.1.1 is not '
        "an IPv4 address; expected e.g. http://127.0.0.1:16732",
    ),
    (
        "register.url=http://[::1:16732",
        'register.url: "http://[::1:16732" is not a valid URL: the host in [ ] is not an IPv6 '
        "address; expected e.g. http://127.0.0.1:16732",
    ),
    (
        "register.url=http://atol.local:16732\n",
        'register.url: "http://atol.local:16732\\x0a" is not a valid URL: it contains a space '
        "or a control character; expected e.g. http://127.0.0.1:16732",
    ),
    (
        "bitrix.portal=https://example.bitrix24.ru:99999",
        'bitrix.portal: "https://example.bitrix24.ru:99999" is not a valid URL: port 99999 is '
        "not a number from 1 to 65535; expected e.g. https://example.bitrix24.ru",
    ),
    (
        "bitrix.webhook=https://example.bitrix24.ru:99999/rest/1/abcdef0123456789/",
        "bitrix.webhook: value is not an inbound webhook URL; "
        "expected https://<portal>/rest/<user id>/<code>/",
    ),
    (
        "operator.name=Иванова\x00А.",
        'operator.name: "Иванова\\x00А." contains the control character \\x00; '
        "expected the cashier's name as plain text on one line",
    ),
    (
        "operator.name=Иванова\nА.",
        'operator.name: "Иванова\\x0aА." contains the control character \\x0a; '
        "expected the cashier's name as plain text on one line",
    ),
    (
        "operator.vatin=5.001007322e11",
        "operator.vatin: 500100732200.0 is not a valid INN; its check digits do not match",
    ),
    (
        "operator.vatin=7.5",
        "operator.vatin: 7.5 is a number with a fraction; expected text or a whole number",
    ),
    (
        "operator.vatin=1e300",
        "operator.vatin: 1e+300 is a number too large to keep its digits exactly; expected it "
        "as text (in quotes) or as a whole number of at most 15 digits",
    ),
    (
        "register.lib-path=/opt/atol/lib\nfptr10.so",
        'register.lib-path: "/opt/atol/lib\\x0afptr10.so" is not an absolute path; '
        "expected e.g. /var/snap/kassa-appliance/common/libfptr10.so",
    ),
    (
        "company.taxation=usn",
        'company.taxation: "usn" is not allowed; '
        "expected one of osn, usnIncome, usnIncomeOutcome, esn, patent",
    ),
    ("shift.auto-open=yes", 'shift.auto-open: "yes" is not allowed; expected true or false'),
    ("shift.auto-close=1", "shift.auto-close: 1 is not allowed; expected true or false"),
    (
        "log.level=verbose",
        'log.level: "verbose" is not allowed; expected one of debug, info, warning, error',
    ),
    (
        "register.drvier=fptr10",
        "register.drvier: unknown key; expected one of register.driver, register.usb-path, "
        "register.lib-path, register.url",
    ),
    (
        "register=fptr10",
        'register: "fptr10" is not allowed; expected a group of keys (register.driver, '
        "register.usb-path, register.lib-path, register.url)",
    ),
    ("b24bot.enabled=yes", 'b24bot.enabled: "yes" is not allowed; expected true or false'),
    (
        "b24bot.code=Kassa Bot",
        'b24bot.code: "Kassa Bot" is not a bot code; expected 1–50 lowercase letters, digits or _',
    ),
    (
        "b24bot.name=   ",
        'b24bot.name: "   " is not a bot name; expected up to 100 characters of plain text',
    ),
    (
        "b24bot.bot-type=openline",
        'b24bot.bot-type: "openline" is not allowed; expected one of personal, supervisor, bot',
    ),
    (
        "b24bot.active-poll-seconds=0.2",
        "b24bot.active-poll-seconds: 0.2 is not a poll interval; expected seconds from 1 to 30",
    ),
    (
        "b24bot.idle-poll-seconds=60",
        "b24bot.idle-poll-seconds: 60 is not a poll interval; expected seconds from 1 to 30",
    ),
    (
        "b24bot.active-window-seconds=-5",
        "b24bot.active-window-seconds: -5 is not a time window; expected seconds from 0 to 86400",
    ),
    (
        "b24bot.cashiers=17=:500100732259",
        "b24bot.cashiers: \"17=:500100732259\" is not a cashier list: entry '17=:500100732259': "
        "the cashier's name is empty; expected e.g. Мастер Иванов И.И.",
    ),
    ("maxbot.enabled=yes", 'maxbot.enabled: "yes" is not allowed; expected true or false'),
    ("maxbot.token=short", "maxbot.token: value is too short; expected at least 16 characters"),
    (
        "maxbot.api-url=http://platform-api2.max.ru",
        'maxbot.api-url: "http://platform-api2.max.ru" is not an https URL; '
        "expected e.g. https://platform-api2.max.ru",
    ),
    (
        "maxbot.poll-timeout=0",
        "maxbot.poll-timeout: 0 is not allowed; expected whole seconds from 1 to 90",
    ),
    (
        "maxbot.cashiers=d5=Иванов",
        'maxbot.cashiers: "d5=Иванов" names d5, but MAX has no departments; expected MAX user ids',
    ),
    (
        "maxbot.cashiers=Иванов",
        "maxbot.cashiers: \"Иванов\" is not a cashier list: entry 'Иванов'; expected "
        "<MAX user id>=<cashier name>[:<INN>] entries separated by commas, "
        "e.g. 4123456=Мастер Иванов И.И.:500100732259",
    ),
    (
        "maxbot.cashiers=4123456=Иванов:123",
        'maxbot.cashiers: "4123456=Иванов:123" is not a cashier list: entry '
        "'4123456=Иванов:123': the cashier's INN: '123' is not an INN; expected 10 digits "
        "(organisation) or 12 digits (individual)",
    ),
    (
        "b24bot.cashiers=[17]",
        "b24bot.cashiers: [17] is not allowed; expected who=name[:INN] entries separated by "
        "commas, where who is a user id (17) or d and a department id (d5), "
        "e.g. 17=Мастер Иванов И.И.:500100732259,d5=Мастер Петров П.П.",
    ),
    *LAN_INVALID_VALUES,
    ("automation.enabled=yes", 'automation.enabled: "yes" is not allowed; expected true or false'),
    (
        "automation.connector=my-connector",
        'automation.connector: "my-connector" is not a connector key; '
        "expected 1–32 of A-Z, a-z, 0-9 and _",
    ),
    (
        "automation.poll-seconds=0",
        "automation.poll-seconds: 0 is not a poll interval; expected seconds from 1 to 600",
    ),
    (
        "automation.fd-field=KASSA_FD",
        'automation.fd-field: "KASSA_FD" is not a deal field code; expected UF_CRM_ and up to '
        "43 of A-Z, 0-9 and _ (crm.deal.userfield.add FIELD_NAME)",
    ),
    ("relay.enabled=yes", 'relay.enabled: "yes" is not allowed; expected true or false'),
    (
        "relay.servers=nats://n1.example.ru:4222",
        'relay.servers: "nats://n1.example.ru:4222" is not allowed; expected tls://host:port '
        "(the relay's NATS servers, TLS only)",
    ),
    (
        "relay.tenant=Shop_1",
        'relay.tenant: "Shop_1" is not allowed; expected 1-32 lower-case letters, digits or '
        "dashes (the tenant id the relay's operator gave you)",
    ),
    (
        "relay.kassa=-bad",
        'relay.kassa: "-bad" is not allowed; expected 1-64 letters, digits, dashes or '
        "underscores starting with a letter or digit",
    ),
    (
        "relay.user=two words",
        'relay.user: "two words" is not allowed; expected the NATS user name the relay\'s '
        "operator gave: 1-128 characters without spaces, e.g. kassa_shop-1_kassa-2",
    ),
    (
        "relay.password=short",
        "relay.password: value is too short; expected at least 16 characters",
    ),
    (
        "relay.password=1234567890123456",
        "relay.password: value is not text; expected the password the relay's operator gave, "
        "as text (one of digits only goes in JSON quotes, e.g. "
        "relay.password='\"<the digits>\"')",
    ),
    (
        "relay.password=Relay Secret 0123456789",
        "relay.password: value contains spaces or control characters; expected the value as issued",
    ),
    (
        "relay.servers=tls://n1.example.ru:4222,nats://n2.example.ru:4222",
        'relay.servers: "tls://n1.example.ru:4222,nats://n2.example.ru:4222" (server '
        "'nats://n2.example.ru:4222') is not allowed; expected tls://host:port (the relay's "
        "NATS servers, TLS only)",
    ),
    (
        "relay.ca-file=relay-ca.pem",
        'relay.ca-file: "relay-ca.pem" is not an absolute path; expected e.g. '
        "/var/snap/kassa-appliance/common/relay-ca.pem",
    ),
    *(
        (assignment.format(group=group), message.format(group=group))
        for group in ("b24bot", "maxbot")
        for assignment, message in CONVERSATION_INVALID_VALUES
    ),
]


@pytest.mark.parametrize(("assignment", "message"), INVALID_VALUES)
def test_configure_rejects_invalid_value_with_exact_message(
    snapd: FakeSnapd, data_dir: Path, assignment: str, message: str
) -> None:
    snapd.snap_set(assignment)
    with pytest.raises(InvalidSettings) as raised:
        run_configure(data_dir)
    assert raised.value.messages == [message]
    assert not (data_dir / CONFIG_FILE_NAME).exists()


def test_every_snap_key_has_an_invalid_value_case() -> None:
    covered = {assignment.split("=", 1)[0] for assignment, _ in INVALID_VALUES}
    assert {key.name for key in SNAP_KEYS} <= covered


@pytest.mark.parametrize(
    "assignment",
    [
        "bitrix.client-secret=s3cr3t",
        "bitrix.client-secret=s3cr3t s3cr3t s3cr3t",
        "bitrix.refresh-token=t0k3n",
        "bitrix.webhook=http://example.bitrix24.ru/rest/1/s3cr3tc0de/",
        "bitrix.pairing=kp1.s3cr3ts3cr3ts3cr3t",
        "bitrix.pairing=s3cr3ts3cr3ts3cr3t",
        "maxbot.token=s3cr3t",
        "maxbot.token=s3cr3t s3cr3t s3cr3t",
        "maxbot.token=" + "s3cr3t" * 100,
        "lan.password=s3cr3t",
        "lan.password=s3cr3t s3cr3t",
        "lan.password=" + "s3cr3t" * 50,
        "relay.password=s3cr3t",
        "relay.password=s3cr3t s3cr3t s3cr3t",
        "relay.password=" + "s3cr3t" * 100,
        "lan.password=12345678",  # a JSON number: the hint names no digits
        "relay.password=1234567890123456",
    ],
)
def test_rejected_secrets_are_never_echoed(
    snapd: FakeSnapd, data_dir: Path, assignment: str
) -> None:
    snapd.snap_set(assignment)
    with pytest.raises(InvalidSettings) as raised:
        run_configure(data_dir)
    secret = assignment.split("=", 1)[1]
    assert raised.value.messages[0].startswith(assignment.split("=", 1)[0] + ": ")
    assert all(secret not in line and "s3cr3t" not in line for line in raised.value.messages)


SECRET_KEYS = {
    "bitrix.client-secret",
    "bitrix.refresh-token",
    "bitrix.pairing",
    "bitrix.webhook",
    "maxbot.token",
    "lan.password",
    "relay.password",
}


def test_tokens_and_passwords_are_the_secret_keys() -> None:
    """A new token or password key must be marked secret (never echoed); each is tested above."""
    assert {key.name for key in SNAP_KEYS if key.secret} == SECRET_KEYS
    suspicious = {
        key.name
        for key in SNAP_KEYS
        if any(word in key.name for word in ("secret", "token", "password", "webhook"))
    }
    assert suspicious <= SECRET_KEYS


@pytest.mark.parametrize(
    ("assignments", "message"),
    [
        (
            ("lan.enabled=true", "lan.password=s3cr3t-Password"),
            "lan.username and lan.password go together; expected both",
        ),
        (
            ("lan.enabled=true",),
            "lan.enabled needs lan.username and lan.password (HTTP Basic), or "
            "lan.trusted-clients for clients that cannot send credentials",
        ),
        (
            ("lan.enabled=true", "lan.trusted-clients=192.168.1.20", "lan.tls-cert=/a/lan.crt"),
            "lan.tls-cert and lan.tls-key go together; expected both",
        ),
        (("lan.kkm-port=16732",), "lan.kkm-port equals lan.port; expected another port or 0"),
        (
            ("relay.enabled=true", "relay.password=s3cr3t-Relay-Password"),
            "relay.servers, relay.tenant must be set when relay.enabled is true; "
            "expected the values from the relay's operator",
        ),
        (
            ("maxbot.enabled=true",),
            "maxbot.enabled is true but maxbot.token is not set; "
            "expected the bot's token from business.max.ru",
        ),
    ],
)
def test_keys_that_go_together_are_named_in_one_line(
    snapd: FakeSnapd, data_dir: Path, assignments: tuple[str, ...], message: str
) -> None:
    """A group's own rule across its keys names the keys itself, never a secret's value."""
    snapd.snap_set(*assignments)
    with pytest.raises(InvalidSettings) as raised:
        run_configure(data_dir)
    assert raised.value.messages == [message]
    assert not (data_dir / CONFIG_FILE_NAME).exists()


def test_all_problems_are_reported_at_once_in_key_order(snapd: FakeSnapd, data_dir: Path) -> None:
    snapd.snap_set("log.level=loud", "register.driver=foo", "bitrix.client-secret=x")
    with pytest.raises(InvalidSettings) as raised:
        run_configure(data_dir)
    assert [line.split(":", 1)[0] for line in raised.value.messages] == [
        "bitrix.client-secret",
        "register.driver",
        "log.level",
    ]


def test_failed_configure_leaves_the_running_config_untouched(
    snapd: FakeSnapd, data_dir: Path
) -> None:
    snapd.snap_set("register.driver=fptr10", "kassa.id=shop-7")
    run_configure(data_dir)
    path = data_dir / CONFIG_FILE_NAME
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))  # any rewrite would move mtime
    before = path.read_bytes()
    snapd.forget_calls()

    snapd.snap_set("register.driver=foo", "log.level=debug")
    with pytest.raises(InvalidSettings):
        run_configure(data_dir)

    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == 1_000_000_000
    assert snapd.calls("restart") == [] and snapd.calls("set-health") == []
    assert sorted(p.name for p in data_dir.iterdir()) == [CONFIG_FILE_NAME]  # no temp files


# -- configure: restarts ---------------------------------------------------------------------


def test_restart_only_when_the_effective_configuration_changes(
    snapd: FakeSnapd, data_dir: Path
) -> None:
    snapd.snap_set("register.driver=fptr10")
    assert run_configure(data_dir) == (True, False)  # first install: snapd starts it after
    assert snapd.calls("set-health") == [["set-health", "okay"]]
    path = data_dir / CONFIG_FILE_NAME
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))

    snapd.forget_calls()
    assert run_configure(data_dir) == (False, False)  # nothing changed (e.g. a refresh)
    snapd.snap_set("log.level=info")  # explicitly the default: same configuration
    assert run_configure(data_dir) == (False, False)
    assert path.stat().st_mtime_ns == 1_000_000_000
    assert snapd.calls("restart") == [] and snapd.calls("set-health") == []

    snapd.snap_set("log.level=debug")  # the daemon uses every key: a change restarts it
    assert run_configure(data_dir) == (True, True)
    assert snapd.calls("restart") == [["restart", SERVICE]]

    snapd.forget_calls()
    snapd.snap_set("log.level=debug")
    assert run_configure(data_dir) == (False, False)
    assert snapd.calls("restart") == []


def test_new_refresh_token_is_a_repairing_restart(snapd: FakeSnapd, data_dir: Path) -> None:
    snapd.snap_set("register.driver=fptr10", f"bitrix.refresh-token={TOKEN}")
    run_configure(data_dir)
    snapd.snap_set(f"bitrix.refresh-token={TOKEN[::-1]}")
    assert run_configure(data_dir) == (True, True)
    assert config_json(data_dir)["bitrix"]["refresh_token"] == TOKEN[::-1]


def test_unreadable_previous_config_is_replaced_and_restarts(
    snapd: FakeSnapd, data_dir: Path
) -> None:
    (data_dir / CONFIG_FILE_NAME).write_text("{not json", encoding="utf-8")
    snapd.snap_set("register.driver=fptr10")
    assert run_configure(data_dir) == (True, True)
    assert config_json(data_dir)["register"]["driver"] == "fptr10"


# -- install ---------------------------------------------------------------------------------


def test_install_seeds_only_unset_keys_and_never_the_driver(snapd: FakeSnapd) -> None:
    snapd.snap_set("kassa.id=shop-7", "log.level=debug")
    seeded = seed_defaults(Snapctl())
    assert seeded == {
        "register.usb-path": "auto",
        "register.url": "http://127.0.0.1:16732",
        "shift.auto-open": True,
        "shift.auto-close": True,
        "b24bot.enabled": False,
        "maxbot.enabled": False,
        "automation.enabled": False,
        "lan.enabled": False,
        "lan.port": 16732,
        "relay.enabled": False,
    }
    store = snapd.store
    assert store["kassa"]["id"] == "shop-7" and store["log"]["level"] == "debug"
    assert store["shift"] == {"auto-open": True, "auto-close": True}
    assert "driver" not in store["register"]
    assert store["lan"] == {"enabled": False, "port": 16732}

    snapd.forget_calls()
    assert seed_defaults(Snapctl()) == {}
    assert snapd.calls("set") == []


def test_install_seeds_values_configure_accepts(snapd: FakeSnapd, data_dir: Path) -> None:
    seed_defaults(Snapctl())
    run_configure(data_dir)
    assert config_json(data_dir)["register"]["driver"] is None


def test_install_shows_every_channel_switched_off_and_keeps_a_preset(
    snapd: FakeSnapd, data_dir: Path
) -> None:
    """Each channel appears in `snap get kassa-appliance` (off), the LAN port with it; a
    value set before the install hook (a gadget default) is kept."""
    snapd.snap_set("lan.port=8080")
    seeded = seed_defaults(Snapctl())
    assert "lan.port" not in seeded and snapd.store["lan"]["port"] == 8080
    for group in ("b24bot", "maxbot", "automation", "lan", "relay"):
        assert snapd.store[group]["enabled"] is False
    assert not any(KEYS_BY_NAME[name].secret for name in seeded)
    run_configure(data_dir)
    written = config_json(data_dir)
    assert written["lan"]["port"] == 8080
    assert not any(written[group]["enabled"] for group in ("b24bot", "maxbot", "lan", "relay"))


# -- post-refresh ----------------------------------------------------------------------------


def test_post_refresh_migrates_a_schema_0_config(data_dir: Path) -> None:
    old = {"register": {"driver": "fptr10", "usb_path": "1-1.3"}, "log": {"level": "debug"}}
    path = data_dir / CONFIG_FILE_NAME
    path.write_text(json.dumps(old), encoding="utf-8")
    post_refresh(data_dir)
    migrated = config_json(data_dir)
    assert migrated["schema"] == 1
    assert migrated["register"]["usb_path"] == "1-1.3" and migrated["log"]["level"] == "debug"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600

    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    post_refresh(data_dir)  # already current: left alone
    assert path.stat().st_mtime_ns == 1_000_000_000


def test_post_refresh_refuses_a_newer_config_schema(data_dir: Path) -> None:
    path = data_dir / CONFIG_FILE_NAME
    path.write_text(json.dumps({"schema": 2}), encoding="utf-8")
    with pytest.raises(MigrationError, match="schema 2, newer than this version understands"):
        post_refresh(data_dir)
    assert json.loads(path.read_text()) == {"schema": 2}


def test_post_refresh_names_a_bad_key_without_its_secret_value(data_dir: Path) -> None:
    path = data_dir / CONFIG_FILE_NAME
    path.write_text(json.dumps({"schema": 1, "bitrix": {"webhook": "s3cr3t"}}), encoding="utf-8")
    with pytest.raises(MigrationError) as raised:
        post_refresh(data_dir)
    assert "bitrix.webhook: value is not an inbound webhook URL" in str(raised.value)
    assert "s3cr3t" not in str(raised.value)


def test_post_refresh_migrates_the_journal(data_dir: Path) -> None:
    path = journal_path(data_dir)
    sqlite3.connect(path).close()  # an empty database: schema 0
    post_refresh(data_dir)
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (JOURNAL_SCHEMA,)
    with Journal(path) as journal:
        assert journal.recent(10) == []


def test_post_refresh_refuses_a_newer_journal(data_dir: Path) -> None:
    path = journal_path(data_dir)
    with sqlite3.connect(path) as db:
        db.execute(f"PRAGMA user_version={JOURNAL_SCHEMA + 1}")
    with pytest.raises(MigrationError, match="newer than this version"):
        post_refresh(data_dir)


def test_post_refresh_without_data_does_nothing(data_dir: Path) -> None:
    post_refresh(data_dir)
    assert list(data_dir.iterdir()) == []


def test_daemon_on_a_device_without_config_json_has_no_register(data_dir: Path) -> None:
    assert load_config(data_dir, on_device=True).register.driver is None
    assert load_config(data_dir, on_device=False).register.driver == "simulator"


def test_daemon_reads_a_schema_0_config_before_post_refresh_ran(data_dir: Path) -> None:
    (data_dir / CONFIG_FILE_NAME).write_text('{"kassa": {"id": "shop-7"}}', encoding="utf-8")
    config = load_config(data_dir)
    assert (config.schema_version, config.kassa.id) == (1, "shop-7")


# -- the real hook scripts, as snapd runs them -----------------------------------------------


@pytest.fixture
def hook_env(tmp_path: Path, snapd: FakeSnapd, data_dir: Path) -> dict[str, str]:
    """Environment of a hook: $SNAP with bin/python3 (here: this venv's python), $SNAP_DATA."""
    snap = tmp_path / "snap"
    (snap / "bin").mkdir(parents=True)
    python = snap / "bin" / "python3"
    python.write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n', encoding="utf-8")
    python.chmod(0o755)
    env = {key: value for key, value in os.environ.items() if key != "KASSA_DATA_DIR"}
    env.update(SNAP=str(snap), SNAP_DATA=str(data_dir), SNAP_INSTANCE_NAME="kassa-appliance")
    return env


def run_hook(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(REPO / "hooks" / name)], env=env, capture_output=True, text=True, timeout=60
    )


def test_hook_scripts_install_then_configure_then_bad_set(
    snapd: FakeSnapd, data_dir: Path, hook_env: dict[str, str]
) -> None:
    assert run_hook("install", hook_env).returncode == 0
    assert snapd.store["log"]["level"] == "info"
    snapd.snap_set("register.driver=fptr10")
    done = run_hook("configure", hook_env)
    assert (done.returncode, done.stderr) == (0, "")
    before = (data_dir / CONFIG_FILE_NAME).read_bytes()

    snapd.snap_set("register.driver=foo", "bitrix.client-secret=s3cr3t")
    done = run_hook("configure", hook_env)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "bitrix.client-secret: value is too short; expected at least 16 characters",
        'register.driver: "foo" is not allowed; expected one of simulator, fptr10, webrequests',
    ]
    assert (data_dir / CONFIG_FILE_NAME).read_bytes() == before


def test_hook_scripts_restart_the_instance_service(
    snapd: FakeSnapd, data_dir: Path, hook_env: dict[str, str]
) -> None:
    snapd.snap_set("register.driver=simulator")
    assert run_hook("configure", hook_env).returncode == 0
    snapd.snap_set("shift.auto-close=false")
    hook_env["SNAP_INSTANCE_NAME"] = "kassa-appliance_test"
    assert run_hook("configure", hook_env).returncode == 0
    assert snapd.calls("restart") == [["restart", "kassa-appliance_test.daemon"]]


def test_post_refresh_hook_script_fails_the_refresh_on_a_newer_schema(
    data_dir: Path, hook_env: dict[str, str]
) -> None:
    (data_dir / CONFIG_FILE_NAME).write_text(json.dumps({"schema": 9}), encoding="utf-8")
    done = run_hook("post-refresh", hook_env)
    assert done.returncode == 1
    assert "schema 9, newer than this version understands (1)" in done.stderr


# -- documentation ---------------------------------------------------------------------------


def _top_comment_block(script: Path) -> str:
    """The hook's leading comment lines (nextcloud-snap style: every key documented there)."""
    lines = script.read_text(encoding="utf-8").splitlines()[1:]  # after the shebang
    block = []
    for line in lines:
        if not line.startswith("#"):
            break
        block.append(line)
    return "\n".join(block)


def test_every_key_is_documented_at_the_top_of_the_configure_hook() -> None:
    block = _top_comment_block(REPO / "hooks" / "configure")
    words = set(re.findall(r"[a-z0-9]+\.[a-z0-9-]+", block))
    assert [key.name for key in SNAP_KEYS if key.name not in words] == []


def test_every_key_is_documented_in_the_configuration_guide() -> None:
    """Each key as `code` in docs/configuration.md, with a section per channel group that
    links that channel's own document."""
    text = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert [key.name for key in SNAP_KEYS if f"`{key.name}`" not in text] == []
    for group, document in [
        ("b24bot", "chat-bots.md"),
        ("maxbot", "chat-bots.md"),
        ("automation", "automation.md"),
        ("lan", "lan-api.md"),
        ("relay", "relay.md"),
    ]:
        section = re.search(rf"^## `{group}\.\*`.*?(?=^## |\Z)", text, re.M | re.S)
        assert section is not None, f"no section for {group}"
        assert f"]({document}" in section.group(0), f"{group} section does not link {document}"
        assert f"snap set kassa-appliance {group}." in section.group(0), group
        assert (REPO / "docs" / document).exists()
