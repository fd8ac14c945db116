"""Both model assertions pass `snap sign` (snapd's full model validation) with a throw-away
RSA-4096 key. Debian's snapd 2.57 reads keys from $SNAP_GNUPG_HOME, not $GNUPGHOME."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from snap_staging import REPO, SNAP_TOOL, run_snap

KEY_NAME = "kassa-throwaway"
MODELS = {
    "signed": REPO / "model-assertion.json",
    "dangerous": REPO / "model-assertion-dangerous.json",
}

pytestmark = pytest.mark.skipif(
    not (os.access(SNAP_TOOL, os.X_OK) and shutil.which("gpg") and shutil.which("gpgconf")),
    reason="needs Debian's snapd (`snap sign`) and gnupg: scripts/install-system-deps",
)


@pytest.fixture(scope="module")
def signing_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Environment for `snap sign -k KEY_NAME` with a fresh key; stops its gpg-agent after."""
    home = tmp_path_factory.mktemp("gnupg")
    home.chmod(0o700)
    subprocess.run(
        [
            "gpg",
            "--homedir",
            str(home),
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            KEY_NAME,
            "rsa4096",
            "sign",
            "never",
        ],
        capture_output=True,
        check=True,
        timeout=120,
    )
    try:
        yield {**os.environ, "SNAP_GNUPG_HOME": str(home)}
    finally:
        subprocess.run(
            ["gpgconf", "--homedir", str(home), "--kill", "gpg-agent"],
            capture_output=True,
            check=False,
        )


def sign(
    model: dict[str, Any], tmp_path: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "model.json"
    path.write_text(json.dumps(model), encoding="utf-8")
    return run_snap("sign", "-k", KEY_NAME, path, env=env)


def load_model(variant: str) -> dict[str, Any]:
    data = json.loads(MODELS[variant].read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("variant", sorted(MODELS))
def test_model_assertion_signs(variant: str, tmp_path: Path, signing_env: dict[str, str]) -> None:
    done = sign(load_model(variant), tmp_path, signing_env)
    assert done.returncode == 0, done.stderr
    assertion = done.stdout
    assert assertion.startswith("type: model\n")
    assert f"grade: {variant}\n" in assertion
    assert "sign-key-sha3-384: " in assertion
    assert "\n\n" in assertion  # headers, blank line, signature


@pytest.mark.parametrize("variant", sorted(MODELS))
def test_model_lists_the_appliance_snaps(variant: str) -> None:
    model = load_model(variant)
    assert model["series"] == "16"
    assert (model["architecture"], model["base"]) == ("arm64", "core24")
    types = {snap["name"]: snap["type"] for snap in model["snaps"]}
    assert types == {
        "kassa-pi": "gadget",
        "pi-kernel": "kernel",
        "core24": "base",
        "snapd": "snapd",
        "kassa-appliance": "app",
        "console-conf": "app",
    }


def test_dangerous_model_leaves_local_snaps_without_ids() -> None:
    """Locally built snaps (ubuntu-image --snap) have no id; a model id would not match."""
    ids = {snap["name"]: snap.get("id") for snap in load_model("dangerous")["snaps"]}
    assert ids["kassa-appliance"] is None and ids["kassa-pi"] is None
    assert all(ids[name] for name in ("pi-kernel", "core24", "snapd", "console-conf"))


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda m: next(s for s in m["snaps"] if s["name"] == "kassa-appliance").pop("id"),
            '"id" of snap "kassa-appliance" is mandatory for signed grade model',
        ),
        (lambda m: m.update({"series": 16}), 'header "series"'),
        (
            lambda m: m.update({"snaps": [s for s in m["snaps"] if s["type"] != "kernel"]}),
            "must specify the model kernel",
        ),
    ],
    ids=["signed-without-id", "series-not-a-string", "no-kernel"],
)
def test_snap_sign_rejects_a_broken_model(
    tmp_path: Path, signing_env: dict[str, str], mutate: Any, expected: str
) -> None:
    model = copy.deepcopy(load_model("signed"))
    mutate(model)
    done = sign(model, tmp_path, signing_env)
    assert done.returncode != 0
    assert expected in done.stderr
