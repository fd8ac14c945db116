"""The kassa-pi gadget: `snap pack --check-skeleton` on a staged tree with stub firmware,
its defaults and connections, and its defaults run through our configure-hook validation."""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path
from typing import Any

import pytest

from kassa_appliance.appliance.hooks.settings import config_from_snap
from snap_staging import GADGET_DIR, SNAP_TOOL, load_yaml, run_snap, stage_gadget

needs_snap_tool = pytest.mark.skipif(
    not os.access(SNAP_TOOL, os.X_OK),
    reason="needs Debian's snapd (`snap pack`): scripts/install-system-deps",
)
SNAP_ID = re.compile(r"[A-Za-z0-9]{32}")
REQUIRED_CONNECTIONS = {"raw-usb", "hardware-observe", "daemon-notify"}


@pytest.fixture(scope="module")
def gadget_yaml() -> dict[str, Any]:
    return load_yaml(GADGET_DIR / "gadget.yaml")


def app_snap_id(gadget: dict[str, Any]) -> str:
    (snap_id,) = [key for key in gadget["defaults"] if key != "system"]
    return str(snap_id)


@needs_snap_tool
def test_gadget_passes_snap_pack_check_skeleton(tmp_path: Path) -> None:
    prime = stage_gadget(tmp_path / "gadget")
    done = run_snap("pack", "--check-skeleton", prime)
    assert done.returncode == 0, done.stderr


@needs_snap_tool
@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda g: g["defaults"].update({"kassa-appliance": {"log.level": "info"}}),
            'default stanza not keyed by "system" or snap-id: kassa-appliance',
        ),
        (
            lambda g: g["connections"].append({"plug": "raw-usb"}),
            'expected "(<snap-id>|system):name"',
        ),
        (
            lambda g: g["volumes"]["pi"].update({"bootloader": "grubx"}),
            "bootloader must be one of",
        ),
    ],
    ids=["defaults-by-name", "connection-without-snap", "bootloader"],
)
def test_check_skeleton_rejects_a_broken_gadget(
    tmp_path: Path, gadget_yaml: dict[str, Any], mutate: Any, expected: str
) -> None:
    broken = copy.deepcopy(gadget_yaml)
    mutate(broken)
    done = run_snap("pack", "--check-skeleton", stage_gadget(tmp_path / "g", gadget_yaml=broken))
    assert done.returncode != 0
    assert expected in done.stderr


def test_gadget_sets_a_refresh_window(gadget_yaml: dict[str, Any]) -> None:
    assert re.fullmatch(r"\d\d:\d\d-\d\d:\d\d", gadget_yaml["defaults"]["system"]["refresh.timer"])


def test_gadget_connects_the_interfaces_that_are_not_auto_connected(
    gadget_yaml: dict[str, Any],
) -> None:
    snap_id = app_snap_id(gadget_yaml)
    assert SNAP_ID.fullmatch(snap_id)
    plugs = {
        entry["plug"].split(":", 1)[1]
        for entry in gadget_yaml["connections"]
        if entry["plug"].startswith(snap_id + ":")
    }
    assert plugs == REQUIRED_CONNECTIONS


def test_model_and_gadget_use_the_same_app_snap_id(gadget_yaml: dict[str, Any]) -> None:
    import json

    model = json.loads((GADGET_DIR.parent / "model-assertion.json").read_text(encoding="utf-8"))
    (app,) = [snap for snap in model["snaps"] if snap["name"] == "kassa-appliance"]
    assert app["id"] == app_snap_id(gadget_yaml)


def test_gadget_defaults_for_our_snap_pass_the_configure_validation(
    gadget_yaml: dict[str, Any],
) -> None:
    """snapd applies them through our configure hook; a bad default would fail seeding."""
    document: dict[str, Any] = {}
    for key, value in gadget_yaml["defaults"][app_snap_id(gadget_yaml)].items():
        group, sub = key.split(".", 1)
        document.setdefault(group, {})[sub] = value
    config = config_from_snap(document)
    assert config.register.driver == "fptr10"


def test_gadget_boot_config_matches_pi_gadget_essentials() -> None:
    config_txt = (GADGET_DIR / "config.txt").read_text(encoding="utf-8").splitlines()
    for line in ("kernel=kernel.img", "cmdline=cmdline.txt", "arm_64bit=1", "enable_uart=1"):
        assert line in config_txt
    cmdline = (GADGET_DIR / "cmdline.txt").read_text(encoding="utf-8")
    assert cmdline.count("\n") == 1 and cmdline.startswith("console=serial0,115200 ")
