"""Token refresh against a lost answer (issue 9, defect 3), in process over loopback HTTP.

The emulator rotates a refresh token and then drops the connection (``drop_answer``), the
strictest platform behaviour the Bitrix24 docs allow: the client never sees the new token
and the one it holds is used up. With a spare chain from the pairing the appliance recovers;
without one it records the pairing as lost at once, says why, and stops asking the server.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest

from bitrix_support import oauth_client
from kassa_appliance.appliance.config import BitrixConfig, Config
from kassa_appliance.bitrix.errors import PairingLost
from kassa_appliance.bitrix.pairing import pairing_status, subscribe
from kassa_appliance.bitrix.token_chains import SPARE_RENEW_AFTER
from kassa_appliance.testbeds.bitrix24.app import Emulator
from kassa_appliance.testbeds.bitrix24.state import REFRESH_TOKEN_LIFETIME, PortalState

PAIRING_KEYS = ("portal", "client_id", "client_secret", "refresh_token", "token_url")


def paired_with_spare(emulator: Emulator) -> dict[str, Any]:
    """A pairing value of two independent refresh tokens: ``<main>,<spare>``."""
    pairing = emulator.credentials()
    spare = emulator.state.issue_refresh_token(pairing["user_id"])
    return {**pairing, "refresh_token": f"{pairing['refresh_token']},{spare}"}


def config_for(pairing: dict[str, Any]) -> Config:
    return Config(bitrix=BitrixConfig.model_validate({k: pairing[k] for k in PAIRING_KEYS}))


def read_json(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


async def test_a_refresh_answer_cut_off_after_rotation_is_recovered_from_the_spare_chain(
    tmp_path: Path,
) -> None:
    async with Emulator() as emulator:
        pairing = paired_with_spare(emulator)
        main, spare = pairing["refresh_token"].split(",")
        emulator.faults.add("drop_answer", methods=["oauth/token"])
        tokens = tmp_path / "tokens.json"
        async with oauth_client(emulator, tokens, pairing=pairing) as rest:
            profile = await rest.result("profile")
            assert profile["ID"] == "1"
            assert emulator.faults.fired["drop_answer"] == 1
            assert main not in emulator.state.refresh_tokens  # rotated, answer lost
            assert spare not in emulator.state.refresh_tokens  # used to re-seed
            stored = read_json(tokens)
            assert stored["refresh_token"] in emulator.state.refresh_tokens
            assert stored["spare_refresh_token"] is None and stored["in_flight"] is None
            assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
            # REST calls keep working, across further refreshes.
            for _ in range(2):
                emulator.state.expire_access_tokens()
                assert (await rest.result("profile"))["ID"] == "1"
        assert emulator.state.refresh_count == 4
        status = pairing_status(config_for(pairing).bitrix, tmp_path)
        assert status == {"bitrix_paired": True, "bitrix_spare_chain": "used"}
        secrets = (main, spare, stored["refresh_token"], stored["access_token"])
        assert not any(s in (tmp_path / "pairing.json").read_text() for s in secrets)


async def test_without_a_spare_a_lost_answer_unpairs_at_once_and_says_why(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[bool] = []
    unsubscribe = subscribe(lambda state: seen.append(state.paired))
    try:
        async with Emulator() as emulator:
            pairing = emulator.credentials()
            emulator.faults.add("drop_answer", methods=["oauth/token"])
            tokens = tmp_path / "tokens.json"
            async with oauth_client(emulator, tokens, pairing=pairing) as rest:
                with pytest.raises(PairingLost, match="connection was cut") as lost:
                    await rest.result("profile")
            assert "bitrix.refresh-token=<new token>" in str(lost.value)
            assert seen[-1] is False
            status = pairing_status(config_for(pairing).bitrix, tmp_path)
            assert status["bitrix_paired"] is False
            assert "connection was cut" in status["bitrix_pairing_problem"]
            # A restart knows at once and does not hammer the token server.
            refreshes = emulator.state.refresh_count
            async with oauth_client(emulator, tokens, pairing=pairing) as rest:
                with pytest.raises(PairingLost, match="connection was cut"):
                    await rest.result("profile")
            assert emulator.state.refresh_count == refreshes
            assert emulator.faults.fired["drop_answer"] == 1
            # Re-pairing (a new configured token) clears the state.
            repaired = emulator.credentials()
            async with oauth_client(emulator, tokens, pairing=repaired) as rest:
                assert (await rest.result("profile"))["ID"] == "1"
            assert pairing_status(config_for(repaired).bitrix, tmp_path)["bitrix_paired"] is True
            assert seen[-1] is True
    finally:
        unsubscribe()
    assert pairing["refresh_token"] not in caplog.text
    assert repaired["refresh_token"] not in caplog.text


async def test_a_refresh_interrupted_by_a_crash_falls_back_to_the_spare_chain(
    tmp_path: Path,
) -> None:
    """The state a SIGKILL leaves between rotation and save: the in-flight marker and the
    used-up token on disk (the daemon-level SIGKILL test is in test_token_refresh_daemon)."""
    async with Emulator() as emulator:
        pairing = paired_with_spare(emulator)
        tokens = tmp_path / "tokens.json"

        async def crash() -> None:
            raise SystemExit("killed")  # stands in for SIGKILL: nothing after it runs

        async with oauth_client(emulator, tokens, pairing=pairing, before_persist=crash) as rest:
            with pytest.raises(SystemExit):
                await rest.result("profile")
        stored = read_json(tokens)
        assert stored["in_flight"]["chain"] == "main"
        assert stored["refresh_token"] not in emulator.state.refresh_tokens  # rotated
        async with oauth_client(emulator, tokens, pairing=pairing) as rest:
            assert (await rest.result("profile"))["ID"] == "1"
        assert read_json(tokens)["in_flight"] is None
        assert pairing_status(config_for(pairing).bitrix, tmp_path)["bitrix_paired"] is True


async def test_the_spare_chain_is_renewed_on_its_own_before_it_expires(tmp_path: Path) -> None:
    async with Emulator() as emulator:
        pairing = paired_with_spare(emulator)
        spare = pairing["refresh_token"].split(",")[1]
        tokens = tmp_path / "tokens.json"
        async with oauth_client(emulator, tokens, pairing=pairing) as rest:
            await rest.result("profile")
            assert read_json(tokens)["spare_refresh_token"] == spare  # young: left alone
            stored = read_json(tokens)
            stored["spare_saved_at"] -= SPARE_RENEW_AFTER + 1
            tokens.write_text(json.dumps(stored))
        async with oauth_client(emulator, tokens, pairing=pairing) as rest:
            emulator.state.expire_access_tokens()
            await rest.result("profile")
        renewed = read_json(tokens)
        assert renewed["spare_refresh_token"] not in (None, spare)
        assert renewed["spare_refresh_token"] in emulator.state.refresh_tokens
        assert spare not in emulator.state.refresh_tokens
        assert renewed["refresh_token"] in emulator.state.refresh_tokens


def test_the_emulated_token_server_rotates_and_expires_refresh_tokens_after_180_days() -> None:
    now = [1_000_000.0]
    state = PortalState(clock=lambda: now[0])
    first, second = state.issue_refresh_token(1), state.issue_refresh_token(1)
    rotated = state.rotate(first)
    assert rotated is not None
    assert state.rotate(first) is None  # used: invalid_grant
    assert second in state.refresh_tokens  # an independent chain is untouched
    now[0] += REFRESH_TOKEN_LIFETIME + 1
    assert state.rotate(rotated[1]) is None  # expired
    assert state.rotate(second) is None
