"""snap/snapcraft.yaml and gadget/snapcraft.yaml against the snapcraft JSON schema, and the
app snap packed by Debian's `snap pack` from a staged tree (no snapd daemon needed)."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from snap_staging import (
    GADGET_DIR,
    HOOKS_DIR,
    REPO,
    SCHEMA_PATH,
    SNAP_TOOL,
    SNAPCRAFT_YAML,
    is_snapd_hook_name,
    load_yaml,
    platform_architectures,
    run_snap,
    stage_app_snap,
)

needs_snap_tool = pytest.mark.skipif(
    not (os.access(SNAP_TOOL, os.X_OK) and shutil.which("unsquashfs")),
    reason="needs Debian's snapd (`snap pack`) and squashfs-tools: scripts/install-system-deps",
)


@pytest.fixture(scope="module")
def core24_validator() -> jsonschema.Draft202012Validator:
    """The schema's Core24Project definition (the top-level oneOf only says "not valid
    under any of the given schemas"). The file has no $schema key: Draft 2020-12."""
    if not SCHEMA_PATH.exists():
        pytest.skip(f"snapcraft schema not found at {SCHEMA_PATH} (CI provides it)")
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert "$schema" not in schema  # so jsonschema's default, Draft 2020-12, applies
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(
        {"$defs": schema["$defs"], "$ref": "#/$defs/Core24Project"}
    )


@pytest.fixture(scope="module")
def snapcraft_project() -> dict[str, Any]:
    return load_yaml(SNAPCRAFT_YAML)


def schema_errors(validator: jsonschema.Draft202012Validator, document: Any) -> list[str]:
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(document)]


@pytest.mark.parametrize(
    "path", [SNAPCRAFT_YAML, GADGET_DIR / "snapcraft.yaml"], ids=["app", "gadget"]
)
def test_snapcraft_yaml_matches_the_core24_schema(
    core24_validator: jsonschema.Draft202012Validator, path: Path
) -> None:
    assert schema_errors(core24_validator, load_yaml(path)) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda p: p["apps"]["daemon"].update({"daemon": "notifyx"}), "$.apps"),
        (lambda p: p["apps"]["daemon"].update({"restart-condition": "sometimes"}), "$.apps"),
        (lambda p: p.update({"architectures": ["arm64"]}), "'architectures' was unexpected"),
    ],
    ids=["daemon", "restart-condition", "architectures-on-core24"],
)
def test_schema_check_catches_broken_snapcraft_yaml(
    core24_validator: jsonschema.Draft202012Validator,
    snapcraft_project: dict[str, Any],
    mutate: Any,
    expected: str,
) -> None:
    broken = copy.deepcopy(snapcraft_project)
    mutate(broken)
    errors = schema_errors(core24_validator, broken)
    assert any(expected in error for error in errors), errors


def test_snap_version_follows_pyproject(snapcraft_project: dict[str, Any]) -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert snapcraft_project["version"] == project["project"]["version"]


def test_daemon_app_is_a_notify_service_with_watchdog_and_its_plugs(
    snapcraft_project: dict[str, Any],
) -> None:
    daemon = snapcraft_project["apps"]["daemon"]
    assert daemon["daemon"] == "notify"
    assert daemon["watchdog-timeout"] == "30s"
    assert daemon["restart-condition"] == "always"
    # daemon: notify / watchdog-timeout need daemon-notify under strict confinement
    assert {"network", "network-bind", "raw-usb", "hardware-observe", "daemon-notify"} <= set(
        daemon["plugs"]
    )
    assert snapcraft_project["confinement"] == "strict"
    assert snapcraft_project["base"] == "core24"
    assert set(platform_architectures(snapcraft_project)) == {"arm64", "amd64", "armhf"}


def test_daemon_wrapper_execs_the_run_command() -> None:
    """NotifyAccess=main: the Python process must replace the shell, not be its child."""
    wrapper = REPO / "snap" / "local" / "bin" / "kassa-appliance-daemon"
    commands = [
        line.strip()
        for line in wrapper.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert commands == ['exec "$SNAP/bin/kassa-appliance" run "$@"']
    assert os.access(wrapper, os.X_OK)


def test_hook_files_have_snapd_hook_names_and_are_executable() -> None:
    hook_files = sorted(HOOKS_DIR.iterdir()) + sorted((GADGET_DIR / "snap" / "hooks").iterdir())
    assert hook_files
    for path in hook_files:
        assert is_snapd_hook_name(path.name), f"{path}: snapd would silently ignore this hook"
        assert os.access(path, os.X_OK), f"{path} is not executable"
        assert path.read_text(encoding="utf-8").startswith("#!/bin/sh\n")


def test_hook_name_check_rejects_misspelt_hooks() -> None:
    assert not is_snapd_hook_name("confgure")
    assert not is_snapd_hook_name("post_refresh")
    assert is_snapd_hook_name("connect-plug-raw-usb")


def test_every_declared_hook_has_a_file(snapcraft_project: dict[str, Any]) -> None:
    """snapcraft silently generates a `#!/bin/true` stub for a declared hook without a file."""
    declared = set(snapcraft_project["hooks"])
    assert declared == {path.name for path in HOOKS_DIR.iterdir()}
    assert {"install", "configure", "post-refresh"} <= declared


def test_hooks_part_dumps_hooks_dir_into_snap_hooks(snapcraft_project: dict[str, Any]) -> None:
    part = snapcraft_project["parts"]["hooks"]
    assert part["plugin"] == "dump"
    assert (REPO / part["source"]).resolve() == HOOKS_DIR
    assert part["organize"] == {"*": "snap/hooks/"}


@needs_snap_tool
@pytest.mark.parametrize("architecture", ["arm64", "amd64", "armhf"])
def test_staged_app_snap_packs(
    tmp_path: Path, snapcraft_project: dict[str, Any], architecture: str
) -> None:
    prime = stage_app_snap(tmp_path / "prime", architecture=architecture)
    out = tmp_path / "out"
    out.mkdir()
    done = run_snap("pack", prime, out)
    assert done.returncode == 0, done.stderr
    snap_file = out / f"kassa-appliance_{snapcraft_project['version']}_{architecture}.snap"
    assert snap_file.exists(), done.stdout

    listing = subprocess.run(
        ["unsquashfs", "-l", str(snap_file)], capture_output=True, text=True, check=True
    ).stdout
    for member in (
        "meta/snap.yaml",
        "meta/hooks/configure",
        "meta/hooks/install",
        "meta/hooks/post-refresh",
        "snap/hooks/configure",
        "bin/kassa-appliance",
        "bin/kassa-appliance-daemon",
        "lib/python3.12/site-packages/kassa_appliance/appliance/hooks/configure.py",
        "lib/python3.12/site-packages/kassa_appliance/appliance/config.py",
    ):
        assert f"squashfs-root/{member}\n" in listing, member

    packed = yaml.safe_load(
        subprocess.run(
            ["unsquashfs", "-cat", str(snap_file), "meta/snap.yaml"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert packed["architectures"] == [architecture]
    assert packed["apps"]["daemon"]["daemon"] == "notify"
    assert packed["apps"]["daemon"]["watchdog-timeout"] == "30s"
    assert set(packed["hooks"]) == {"install", "configure", "post-refresh"}


@needs_snap_tool
@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda p: p["apps"]["daemon"].update({"daemon": "bogus"}), '"daemon" field contains'),
        (lambda p: p["apps"]["daemon"].update({"watchdog-timeout": "30"}), "missing unit"),
        (lambda p: p["apps"]["daemon"].update({"restart-condition": "x"}), "restart condition"),
    ],
    ids=["daemon", "duration-unit", "restart-condition"],
)
def test_snap_pack_rejects_a_broken_service_definition(
    tmp_path: Path, snapcraft_project: dict[str, Any], mutate: Any, expected: str
) -> None:
    broken = copy.deepcopy(snapcraft_project)
    mutate(broken)
    prime = stage_app_snap(tmp_path / "prime", architecture="arm64", snapcraft=broken)
    done = run_snap("pack", "--check-skeleton", prime)
    assert done.returncode != 0
    assert expected in done.stderr


@needs_snap_tool
def test_snap_pack_rejects_a_non_executable_hook(tmp_path: Path) -> None:
    prime = stage_app_snap(tmp_path / "prime", architecture="arm64")
    (prime / "snap" / "hooks" / "configure").chmod(0o644)
    (prime / "meta" / "hooks" / "configure").chmod(0o644)
    done = run_snap("pack", "--check-skeleton", prime)
    assert done.returncode != 0
    assert "should be executable" in done.stderr
