"""The ``maxbot`` settings and ``snap set`` keys, and the TLS trust the bot uses."""

from __future__ import annotations

import hashlib
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from kassa_appliance.appliance.config import Config, config_to_json
from kassa_appliance.appliance.hooks.settings import InvalidSettings, config_from_snap
from kassa_appliance.channels.maxbot.client import MaxClient
from kassa_appliance.channels.maxbot.errors import MaxApiError
from kassa_appliance.channels.maxbot.settings import DEFAULT_API_URL, MaxBotConfig
from kassa_appliance.channels.maxbot.tls import ca_bundle_text, max_ssl_context
from kassa_appliance.testbeds.maxapi.server import MaxApiEmulator
from maxbot_support import qr_png

TOKEN = "f9LHodD0cOJZ0b30xpIJT-test-token-0001"
ROOT_SHA256 = "D26D2D0231B7C39F92CC738512BA54103519E4405D68B5BD703E9788CA8ECF31"
SUB_SHA256 = "BBBDE2103E790B999EC62BD03CF625A5A2E7C316E10AFE6A490EEDEAD8B3FD9B"


def test_snap_keys_build_the_section() -> None:
    config = config_from_snap(
        {
            "maxbot": {
                "enabled": "true",
                "token": TOKEN,
                "poll-timeout": 25,
                "cashiers": "4123456=Мастер Иванов И.И.:500100732259;777=Петрова А.",
            }
        }
    )
    section = config.maxbot
    assert section.enabled and section.token is not None
    assert section.token.get_secret_value() == TOKEN
    assert section.api_url == DEFAULT_API_URL and section.poll_timeout == 25
    assert section.cashiers["4123456"].inn == "500100732259"
    assert section.cashiers["777"].name == "Петрова А."
    again = Config.model_validate_json(config_to_json(config))
    assert again.maxbot == section


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"enabled": True}, "maxbot.token is not set"),
        ({"token": "short"}, "maxbot.token: value is too short"),
        ({"token": "has space in it 1234"}, "maxbot.token: value contains spaces"),
        ({"api-url": "http://platform-api2.max.ru"}, "maxbot.api-url"),
        ({"api-url": "http://127.0.0.1:16733"}, "is not an https URL"),
        ({"poll-timeout": 0}, "maxbot.poll-timeout: 0 is not allowed"),
        ({"poll-timeout": 91}, "from 1 to 90"),
        ({"cashiers": "d5=Иванов"}, "MAX has no departments"),
        ({"cashiers": "4123456=Иванов:123"}, "maxbot.cashiers"),
        ({"enabled": "yes"}, "expected true or false"),
    ],
)
def test_bad_values_are_named(values: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSettings) as raised:
        config_from_snap({"maxbot": values})
    text = "\n".join(raised.value.messages)
    assert message in text
    assert '"short"' not in text and "has space" not in text  # a secret is never echoed


def test_the_emulator_may_be_loopback_http_in_config_json() -> None:
    section = MaxBotConfig(enabled=True, token=TOKEN, api_url="http://127.0.0.1:16733/")
    assert section.api_url == "http://127.0.0.1:16733"
    with pytest.raises(ValidationError):
        MaxBotConfig(api_url="http://example.ru")


def test_the_token_is_not_shown() -> None:
    section = MaxBotConfig(enabled=True, token=TOKEN)
    assert TOKEN not in repr(section) and TOKEN not in str(section)


def _fingerprints(pem: str) -> list[str]:
    blocks = pem.split("-----BEGIN CERTIFICATE-----")[1:]
    found = []
    for block in blocks:
        der = ssl.PEM_cert_to_DER_cert("-----BEGIN CERTIFICATE-----" + block.strip() + "\n")
        found.append(hashlib.sha256(der).hexdigest().upper())
    return found


def test_the_russian_trusted_ca_is_shipped_and_trusted_beside_the_system_cas() -> None:
    assert _fingerprints(ca_bundle_text()) == [ROOT_SHA256, SUB_SHA256]
    context = max_ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    subjects = [dict(item[0] for item in cert["subject"]) for cert in context.get_ca_certs()]
    names = [s.get("commonName") for s in subjects]
    assert "Russian Trusted Root CA" in names and "Russian Trusted Sub CA" in names
    system = ssl.create_default_context().get_ca_certs()
    assert len(context.get_ca_certs()) == len(system) + 2


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    names = ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        [*request, "-keyout", str(key), "-out", str(cert), *names],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


async def test_tls_is_verified_against_the_trusted_cas_only(tmp_path: Path) -> None:
    """A server whose certificate no trusted CA signed is refused; trusted, it works — over
    a real TLS handshake with the emulator serving https."""
    cert, key = _self_signed(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    with MaxApiEmulator(TOKEN, tls=server_tls) as emulator:
        assert emulator.url.startswith("https://")
        refused = MaxClient(TOKEN, emulator.url)
        with pytest.raises(MaxApiError) as raised:
            await refused.get_me()
        assert raised.value.status == 0 and "TLS certificate" in raised.value.message
        await refused.aclose()

        trusting = ssl.create_default_context(cafile=str(cert))
        client = MaxClient(TOKEN, emulator.url, verify=trusting)
        assert (await client.get_me())["is_bot"] is True
        token = await client.upload_image(qr_png())  # the upload URL is https too
        assert token
        await client.aclose()
