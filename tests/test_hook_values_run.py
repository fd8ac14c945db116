"""Every value the configure hook accepts is one the daemon can start on.

The hook runs against the fake ``snapctl`` of test_hooks; then the daemon's own start-up
path reads the written config.json (``load_config``) and builds what ``run`` builds from it
(``make_register``, ``make_auth``, ``engine_settings``) and the requests it will send
(httpx parses the register, portal, webhook and token URLs exactly as it will on the wire).
Nothing touches the network: building an httpx request does not connect.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from kassa_appliance.appliance.config import Config, load_config
from kassa_appliance.appliance.daemon import engine_settings
from kassa_appliance.bitrix.link import make_auth
from kassa_appliance.registers.factory import make_register
from test_hooks import SECRET, TOKEN, VALID_VALUES, FakeSnapd, data_dir, run_configure, snapd

__all__ = ["data_dir", "snapd"]  # fixtures

OAUTH = ("bitrix.client-id=local.5f1a2b3c4d5e6f.12345678", f"bitrix.client-secret={SECRET}")
"""With these, a portal becomes an OAuth link (make_auth builds nothing without them)."""

EDGE_CASES: list[tuple[str, ...]] = [
    ("register.driver=webrequests", "register.url=http://127.0.0.1:65535"),
    ("register.driver=webrequests", "register.url=http://[::1]:1/"),
    ("register.driver=webrequests", "register.url=https://[2001:db8::7]:16732/atol"),
    ("register.driver=webrequests", "register.url=http://атол.рф:16732"),
    ("register.driver=webrequests", "register.url=http://atol-server.local."),
    ("register.driver=fptr10", "register.usb-path=/dev/ttyACM0"),
    ("register.driver=fptr10", "register.lib-path=/opt/atol/библиотека/libfptr10.so"),
    (
        "register.driver=simulator",
        "operator.name=Ёлкина Мария-Luísa 🧾",
        "operator.vatin=7707083893",
    ),
    ("register.driver=simulator", "operator.name=" + "Я" * 64, "operator.vatin=5.00100732259e11"),
    ("register.driver=simulator", "bitrix.portal=https://example.bitrix24.ru:65535", *OAUTH),
    ("register.driver=simulator", "bitrix.portal=https://[2001:db8::1]:8443/", *OAUTH),
    ("register.driver=simulator", "bitrix.portal=https://портал.рф", *OAUTH),
    (
        "register.driver=simulator",
        "bitrix.portal=https://example.bitrix24.ru",
        *OAUTH,
        f"bitrix.refresh-token={TOKEN}",
        "bitrix.allowed-users=[1, 17, 42]",
    ),
    ("register.driver=simulator", "bitrix.webhook=https://example.bitrix24.ru:8443/rest/1/abc/"),
    ("register.driver=simulator", "kassa.id=7", "company.taxation=patent", "log.level=error"),
]
ACCEPTED = [*((assignment,) for assignment, *_ in VALID_VALUES), *EDGE_CASES]


def start_up_path(data_dir: Path) -> Config:
    """What `kassa-appliance run` builds from config.json before its first job."""
    config = load_config(data_dir, on_device=True)
    engine_settings(config)
    if config.register.driver is not None:
        register = make_register(config.register, data_dir)
        register.close()
    httpx.Request("POST", httpx.URL(config.register.url).join("/api/v2/requests"))
    httpx.Request("POST", config.bitrix.token_url)
    auth = make_auth(config.bitrix, data_dir)
    if auth is not None:
        httpx.Request("POST", auth.rest_url("kassa.job.list"))
    return config


@pytest.mark.parametrize("assignments", ACCEPTED, ids=lambda values: " ".join(values)[:80])
def test_an_accepted_value_starts_the_daemon(
    snapd: FakeSnapd, data_dir: Path, assignments: tuple[str, ...]
) -> None:
    snapd.snap_set(*assignments)
    run_configure(data_dir)
    start_up_path(data_dir)


def test_the_edge_cases_are_accepted_as_given(snapd: FakeSnapd, data_dir: Path) -> None:
    snapd.snap_set(*EDGE_CASES[1])
    run_configure(data_dir)
    assert start_up_path(data_dir).register.url == "http://[::1]:1/"
