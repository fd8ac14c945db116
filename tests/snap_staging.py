"""Offline stand-ins for what snapcraft does, so Debian's `snap pack` can check our packaging.

snapcraft (not installable here) renders ``meta/snap.yaml`` from ``snapcraft.yaml``, copies
hooks and builds the parts. :func:`render_snap_yaml` does the rendering for the keys we use
(they map 1:1: name, version, base, confinement, grade, type, assumes, environment, apps,
hooks with their plugs), :func:`stage_app_snap` and :func:`stage_gadget` lay out a prime
tree like snapcraft's, with our package copied where the python plugin would install it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAPCRAFT_YAML = REPO / "snap" / "snapcraft.yaml"
GADGET_DIR = REPO / "gadget"
HOOKS_DIR = REPO / "hooks"
SCHEMA_PATH = REPO.parent / "shared" / "schemas" / "snapcraft.json"
SNAP_TOOL = shutil.which("snap", path="/usr/bin:/usr/local/bin:/bin") or "/usr/bin/snap"
SITE_PACKAGES = Path("lib/python3.12/site-packages")

# snapd snap/hooktypes.go: the hook names snapd runs (snap pack ignores any other file).
SNAPD_HOOK_PATTERNS = tuple(
    re.compile(pattern)
    for pattern in (
        r"prepare-device",
        r"prepare-serial-request",
        r"install-device",
        r"default-configure",
        r"configure",
        r"install",
        r"pre-refresh",
        r"post-refresh",
        r"remove",
        r"prepare-(?:plug|slot)-[-a-z0-9]+",
        r"unprepare-(?:plug|slot)-[-a-z0-9]+",
        r"connect-(?:plug|slot)-[-a-z0-9]+",
        r"disconnect-(?:plug|slot)-[-a-z0-9]+",
        r"check-health",
        r"fde-setup",
        r"gate-auto-refresh",
        r"change-view-.+",
        r"save-view-.+",
        r"query-view-.+",
        r"load-view-.+",
        r"observe-view-.+",
    )
)

_TOP_LEVEL_KEYS = (
    "name",
    "version",
    "title",
    "summary",
    "description",
    "license",
    "type",
    "base",
    "confinement",
    "grade",
    "assumes",
    "epoch",
    "environment",
    "plugs",
    "slots",
    "layout",
)
_SNAPCRAFT_ONLY_APP_KEYS = ("extensions", "passthrough")


def is_snapd_hook_name(name: str) -> bool:
    return any(pattern.fullmatch(name) for pattern in SNAPD_HOOK_PATTERNS)


def load_yaml(path: Path) -> dict[str, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path} is not a YAML mapping"
    return document


def platform_architectures(snapcraft: Mapping[str, Any]) -> list[str]:
    """The build-for architectures of a core24 ``platforms:`` map."""
    architectures: list[str] = []
    for name, platform in (snapcraft.get("platforms") or {}).items():
        build_for = (platform or {}).get("build-for", name)
        for arch in [build_for] if isinstance(build_for, str) else build_for:
            if arch not in architectures:
                architectures.append(arch)
    return architectures


def render_snap_yaml(
    snapcraft: Mapping[str, Any], *, architecture: str, hooks: Iterable[str] = ()
) -> dict[str, Any]:
    """meta/snap.yaml as snapcraft renders it for one build-for architecture.

    ``hooks`` are the hook files found in the tree; their plugs/environment come from the
    ``hooks:`` section.
    """
    rendered: dict[str, Any] = {
        key: snapcraft[key] for key in _TOP_LEVEL_KEYS if snapcraft.get(key) is not None
    }
    rendered["architectures"] = [architecture]
    apps = {}
    for name, app in (snapcraft.get("apps") or {}).items():
        entry = {k: v for k, v in app.items() if k not in _SNAPCRAFT_ONLY_APP_KEYS}
        entry.update(app.get("passthrough") or {})
        apps[name] = entry
    if apps:
        rendered["apps"] = apps
    declared = snapcraft.get("hooks") or {}
    hook_entries = {}
    for name in sorted(set(hooks) | set(declared)):
        entry = {k: v for k, v in (declared.get(name) or {}).items() if k != "passthrough"}
        entry.update((declared.get(name) or {}).get("passthrough") or {})
        hook_entries[name] = entry
    if hook_entries:
        rendered["hooks"] = hook_entries
    return rendered


def write_yaml(path: Path, document: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(dict(document), sort_keys=False), encoding="utf-8")


def _copy_executable(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)


def _write_hook_wrapper(meta_hooks: Path, name: str) -> None:
    """snapcraft's wrapper for a hook a part installed into snap/hooks/."""
    wrapper = meta_hooks / name
    wrapper.parent.mkdir(parents=True, exist_ok=True)
    wrapper.write_text(f'#!/bin/sh\nexec "$SNAP/snap/hooks/{name}" "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)


CONSOLE_SCRIPT = """#!/usr/bin/env python3
import sys
from kassa_appliance.__main__ import main
sys.exit(main())
"""


def stage_app_snap(
    prime: Path, *, architecture: str, snapcraft: Mapping[str, Any] | None = None
) -> Path:
    """A prime tree of kassa-appliance: package, console script, wrappers, hooks, snap.yaml."""
    snapcraft = snapcraft if snapcraft is not None else load_yaml(SNAPCRAFT_YAML)
    # part kassa-appliance (python plugin): the package in the venv's site-packages.
    shutil.copytree(
        REPO / "src" / "kassa_appliance",
        prime / SITE_PACKAGES / "kassa_appliance",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    console = prime / "bin" / "kassa-appliance"
    console.parent.mkdir(parents=True, exist_ok=True)
    console.write_text(CONSOLE_SCRIPT, encoding="utf-8")
    console.chmod(0o755)
    # part wrappers (dump snap/local/bin/ → bin/)
    for source in (REPO / "snap" / "local" / "bin").iterdir():
        _copy_executable(source, prime / "bin" / source.name)
    # part hooks (dump hooks/ → snap/hooks/), then snapcraft's meta/hooks wrappers
    hook_names = sorted(path.name for path in HOOKS_DIR.iterdir() if path.is_file())
    for name in hook_names:
        _copy_executable(HOOKS_DIR / name, prime / "snap" / "hooks" / name)
        _write_hook_wrapper(prime / "meta" / "hooks", name)
    write_yaml(
        prime / "meta" / "snap.yaml",
        render_snap_yaml(snapcraft, architecture=architecture, hooks=hook_names),
    )
    return prime


BOOT_FIRMWARE_STUBS = ("bootcode.bin", "start4.elf", "fixup4.dat")


def stage_gadget(prime: Path, *, gadget_yaml: Mapping[str, Any] | None = None) -> Path:
    """A prime tree of the kassa-pi gadget with stub firmware in place of the Ubuntu
    archive's linux-firmware-raspi (not reachable offline)."""
    snapcraft = load_yaml(GADGET_DIR / "snapcraft.yaml")
    boot_assets = prime / "boot-assets"
    boot_assets.mkdir(parents=True)
    for name in ("config.txt", "cmdline.txt"):
        shutil.copy2(GADGET_DIR / name, boot_assets / name)
    for name in BOOT_FIRMWARE_STUBS:
        (boot_assets / name).write_bytes(b"stub firmware for snap pack --check-skeleton\n")
    shutil.copy2(GADGET_DIR / "piboot.conf", prime / "piboot.conf")
    hook_dir = GADGET_DIR / "snap" / "hooks"
    hook_names = sorted(path.name for path in hook_dir.iterdir())
    for name in hook_names:
        _copy_executable(hook_dir / name, prime / "meta" / "hooks" / name)
    (prime / "meta").mkdir(exist_ok=True)
    if gadget_yaml is None:
        shutil.copy2(GADGET_DIR / "gadget.yaml", prime / "meta" / "gadget.yaml")
    else:
        write_yaml(prime / "meta" / "gadget.yaml", gadget_yaml)
    architecture = platform_architectures(snapcraft)[0]
    write_yaml(
        prime / "meta" / "snap.yaml",
        render_snap_yaml(snapcraft, architecture=architecture, hooks=hook_names),
    )
    return prime


def run_snap(
    *args: str | Path, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SNAP_TOOL, *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env=None if env is None else dict(env),
    )
