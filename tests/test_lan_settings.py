"""The ``lan.*`` snap keys: off by default, never open to everyone, the password never shown."""

from __future__ import annotations

import pytest

from kassa_appliance.appliance.hooks.settings import InvalidSettings, config_from_snap

REGISTER = {"register": {"driver": "simulator"}}


def refusal(lan: dict[str, object]) -> str:
    with pytest.raises(InvalidSettings) as caught:
        config_from_snap({**REGISTER, "lan": lan})
    return "\n".join(caught.value.messages)


def test_off_by_default_and_on_only_with_auth() -> None:
    assert config_from_snap(REGISTER).lan.enabled is False
    assert "lan.username and lan.password" in refusal({"enabled": True})
    assert "go together" in refusal({"enabled": True, "username": "kassa1c"})
    config = config_from_snap(
        {**REGISTER, "lan": {"enabled": True, "username": "kassa1c", "password": "Very-Secret-42"}}
    )
    assert config.lan.secured_by_password and config.lan.port == 16732


def test_the_allow_list_is_never_everyone() -> None:
    for network in ("0.0.0.0/0", "10.0.0.0/7", "::/0", "not-an-ip"):
        assert "lan.trusted-clients" in refusal({"trusted-clients": network})
    config = config_from_snap(
        {**REGISTER, "lan": {"enabled": True, "trusted-clients": "192.168.1.20, 10.1.0.0/16"}}
    )
    assert config.lan.trusted_clients == ("192.168.1.20", "10.1.0.0/16")


def test_the_password_is_never_shown() -> None:
    message = refusal({"password": "short 1"})
    assert "short 1" not in message and "lan.password" in message
    assert "lan.tls-cert" in refusal({"tls-cert": "relative/path.pem"})
    assert "lan.cors-origins" in refusal({"cors-origins": "shop.example.ru/path"})
    assert "lan.kkm-port" in refusal({"kkm-port": 16732})


def test_the_lan_port_may_not_be_the_port_of_this_appliances_own_web_requests_register() -> None:
    """Both default to 16732: with register.driver=webrequests on this device the LAN API
    could not bind, or the daemon would print through itself. Refused by key, with a fix."""

    lan = {"enabled": True, "username": "kassa1c", "password": "Very-Secret-42-long"}
    with pytest.raises(InvalidSettings) as refused:
        config_from_snap({"register": {"driver": "webrequests"}, "lan": lan})
    assert refused.value.messages == [
        "lan.port 16732 is also the port of register.url (http://127.0.0.1:16732, the Atol "
        "Web Requests server this appliance prints through); expected another lan.port, "
        "e.g. 16733"
    ]
    moved = config_from_snap({"register": {"driver": "webrequests"}, "lan": {**lan, "port": 16733}})
    assert moved.lan.port == 16733
    remote = {"driver": "webrequests", "url": "http://192.168.1.50:16732"}
    assert config_from_snap({"register": remote, "lan": lan}).lan.port == 16732
    assert config_from_snap({"register": {"driver": "simulator"}, "lan": lan}).lan.enabled
