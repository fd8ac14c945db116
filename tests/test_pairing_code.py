"""``snap set bitrix.pairing=<code>``: the real configure hook against the fake ``snapctl`` of
test_hooks, with codes the Kassa app's own encoder made (app/test/fixtures/pairing-code.json,
generated from ``app/src/lib/pairing.ts`` ``encodePairing``) and codes broken on purpose."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from kassa_appliance.appliance.config import CONFIG_FILE_NAME, load_config
from kassa_appliance.appliance.hooks.settings import InvalidSettings
from kassa_appliance.bitrix.pairing_code import PairingCodeError, decode_pairing_code
from test_hooks import (
    SECRET,
    TOKEN,
    FakeSnapd,
    config_json,
    data_dir,
    hook_env,
    run_configure,
    run_hook,
    snapd,
)

__all__ = ["data_dir", "hook_env", "snapd"]  # fixtures

REPO = Path(__file__).resolve().parents[1]
APP_CODES = json.loads(
    (REPO / "app" / "test" / "fixtures" / "pairing-code.json").read_text(encoding="utf-8")
)["codes"]
PAIRING: dict[str, str] = {
    "portal": "https://example.bitrix24.ru",
    "client_id": "local.5f1a2b3c4d5e6f.12345678",
    "client_secret": SECRET,
    "refresh_token": TOKEN,
    "kassa": "kassa-1",
}


def encode(value: Any) -> str:
    """A code the way the app makes one (compact JSON, base64url without padding)."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return "kp1." + base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def refused(snapd: FakeSnapd, data_dir: Path, *assignments: str) -> list[str]:
    snapd.snap_set(*assignments)
    with pytest.raises(InvalidSettings) as raised:
        run_configure(data_dir)
    return raised.value.messages


# -- codes of the app's encoder ------------------------------------------------------------


@pytest.mark.parametrize("case", APP_CODES, ids=lambda case: case["name"])
def test_a_code_of_the_app_gives_its_settings(
    snapd: FakeSnapd, data_dir: Path, case: dict[str, Any]
) -> None:
    pairing = case["pairing"]
    assert case["command"] == f"sudo snap set kassa-appliance bitrix.pairing={case['code']}"
    snapd.snap_set("register.driver=simulator", f"bitrix.pairing={case['code']}")
    assert run_configure(data_dir) == (True, False)

    bitrix = config_json(data_dir)["bitrix"]
    tokens = pairing["refresh_token"]
    if "spare_refresh_token" in pairing:
        tokens += "," + pairing["spare_refresh_token"]
    assert (bitrix["portal"], bitrix["client_id"], bitrix["client_secret"]) == (
        pairing["portal"],
        pairing["client_id"],
        pairing["client_secret"],
    )
    assert bitrix["refresh_token"] == tokens
    assert config_json(data_dir)["kassa"]["id"] == pairing["kassa"]
    assert load_config(data_dir, on_device=True).kassa.id == pairing["kassa"]
    # the code is expanded into the separate keys and not kept itself
    assert "pairing" not in snapd.store["bitrix"]
    assert snapd.store["bitrix"]["refresh-token"] == tokens
    assert snapd.store["kassa"]["id"] == pairing["kassa"]


def test_the_decoder_reads_every_field_of_the_app_code() -> None:
    for case in APP_CODES:
        code = decode_pairing_code(case["code"])
        assert {key: value for key, value in vars(code).items() if value is not None} == case[
            "pairing"
        ]
        assert case["pairing"]["client_secret"] not in repr(code)


# -- the code wins over the separate keys ----------------------------------------------------


def test_the_code_replaces_the_separate_keys_and_says_so(snapd: FakeSnapd, data_dir: Path) -> None:
    snapd.snap_set(
        "register.driver=simulator",
        "kassa.id=shop-7",
        "bitrix.portal=https://old.bitrix24.ru",
        f"bitrix.refresh-token={TOKEN[::-1]}",
        "operator.name=Иванов",
    )
    run_configure(data_dir)
    snapd.snap_set(f"bitrix.pairing={encode(PAIRING)}")
    written, restarted = run_configure(data_dir)
    assert (written, restarted) == (True, True)  # re-pairing restarts the daemon
    config = config_json(data_dir)
    assert config["kassa"]["id"] == "kassa-1"
    assert config["bitrix"]["portal"] == "https://example.bitrix24.ru"
    assert config["bitrix"]["refresh_token"] == TOKEN
    assert config["operator"]["name"] == "Иванов"  # keys the code does not carry stay
    # a later `snap set` of one key works as usual: the code is no longer there
    snapd.snap_set("kassa.id=shop-8")
    run_configure(data_dir)
    assert config_json(data_dir)["kassa"]["id"] == "shop-8"


def test_the_hook_script_prints_what_the_code_replaced(
    snapd: FakeSnapd, data_dir: Path, hook_env: dict[str, str]
) -> None:
    snapd.snap_set("register.driver=simulator", "kassa.id=shop-7", f"bitrix.refresh-token={TOKEN}")
    assert run_hook("configure", hook_env).returncode == 0
    snapd.snap_set(f"bitrix.pairing={encode({**PAIRING, 'refresh_token': TOKEN[::-1]})}")
    done = run_hook("configure", hook_env)
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [
        "bitrix.pairing: applied to bitrix.portal, bitrix.client-id, bitrix.client-secret, "
        "bitrix.refresh-token, kassa.id; the code is not kept; replaced bitrix.refresh-token, "
        'kassa.id (was "shop-7")'
    ]
    assert TOKEN not in done.stdout and TOKEN[::-1] not in done.stdout


# -- bad codes: refused with the reason, never a secret, the old config stays -----------------

BAD_CODES = [
    ("xx." + "A" * 20, 'the code does not start with "kp1."'),
    ("kp1.***", "the code has characters outside base64url"),
    ("kp1.A", "the code is cut or mistyped (not valid base64url)"),
    (encode("not json"), "the code is cut or mistyped (its content is not JSON)"),
    (encode([1, 2]), "the code does not hold a pairing"),
    (encode({**PAIRING, "admin": "x"}), "the code has the unknown field admin"),
    (
        encode({k: v for k, v in PAIRING.items() if k != "kassa"}),
        "the code lacks kassa; expected all of portal, client_id, client_secret, "
        "refresh_token, kassa",
    ),
    (encode({**PAIRING, "kassa": 7}), "the code has kassa that is not text"),
    (
        encode({**PAIRING, "portal": "http://example.bitrix24.ru"}),
        'the code\'s portal "http://example.bitrix24.ru" is not an https URL; '
        "expected e.g. https://example.bitrix24.ru",
    ),
    (
        encode({**PAIRING, "client_id": "my app"}),
        'the code\'s client_id "my app" is not a valid client id',
    ),
    (
        encode({**PAIRING, "client_secret": "s3cr3t"}),
        "the code's client_secret is too short; expected at least 16 characters",
    ),
    (
        encode({**PAIRING, "refresh_token": "s3cr3t s3cr3t s3cr3t"}),
        "the code's refresh_token contains spaces or control characters",
    ),
    (
        encode({**PAIRING, "spare_refresh_token": "s3cr3t"}),
        "the code's spare_refresh_token is too short; expected at least 16 characters",
    ),
    (
        encode({**PAIRING, "spare_refresh_token": TOKEN}),
        "the code's spare_refresh_token equals its refresh_token; expected a second, "
        "independent token",
    ),
    (
        encode({**PAIRING, "kassa": "-bad"}),
        'the code\'s kassa "-bad" is not allowed; expected 1-64 letters',
    ),
]


@pytest.mark.parametrize(("code", "reason"), BAD_CODES, ids=[r[:40] for _, r in BAD_CODES])
def test_a_bad_code_is_refused_with_the_reason(
    snapd: FakeSnapd, data_dir: Path, code: str, reason: str
) -> None:
    snapd.snap_set("register.driver=simulator", "kassa.id=shop-7")
    run_configure(data_dir)
    before = (data_dir / CONFIG_FILE_NAME).read_bytes()

    messages = refused(snapd, data_dir, f"bitrix.pairing={code}")
    assert len(messages) == 1 and messages[0].startswith(f"bitrix.pairing: {reason}")
    assert "s3cr3t" not in messages[0] and SECRET not in messages[0] and TOKEN not in messages[0]
    assert code not in messages[0]
    assert (data_dir / CONFIG_FILE_NAME).read_bytes() == before
    assert snapd.store["bitrix"]["pairing"] == code  # snapd discards it, not the hook


def test_every_problem_of_a_code_is_reported_at_once(snapd: FakeSnapd, data_dir: Path) -> None:
    code = encode({**PAIRING, "portal": "ftp://x", "client_secret": "short", "kassa": "a b"})
    messages = refused(snapd, data_dir, f"bitrix.pairing={code}", "log.level=loud")
    assert [line.split(" ", 4)[3] for line in messages[:3]] == ["portal", "client_secret", "kassa"]
    assert messages[3].startswith("log.level:")


def test_a_refresh_token_may_carry_a_spare_checked_alone(snapd: FakeSnapd, data_dir: Path) -> None:
    snapd.snap_set("register.driver=simulator", f"bitrix.refresh-token={TOKEN},{TOKEN[::-1]}")
    run_configure(data_dir)
    assert config_json(data_dir)["bitrix"]["refresh_token"] == f"{TOKEN},{TOKEN[::-1]}"
    assert refused(snapd, data_dir, f"bitrix.refresh-token={TOKEN},s3cr3t") == [
        "bitrix.refresh-token: value has a spare token (after the comma) that is too short; "
        "expected at least 16 characters"
    ]
    assert refused(snapd, data_dir, f"bitrix.refresh-token={TOKEN},{TOKEN}") == [
        "bitrix.refresh-token: value has a spare token equal to the main one; "
        "expected a second, independent token"
    ]


def test_the_decoder_refuses_without_quoting_the_code() -> None:
    code = encode({**PAIRING, "portal": 1})
    with pytest.raises(PairingCodeError) as raised:
        decode_pairing_code(code)
    assert code not in str(raised.value) and SECRET not in str(raised.value)
    with pytest.raises(PairingCodeError, match="too long"):
        decode_pairing_code("kp1." + "A" * 5000)
