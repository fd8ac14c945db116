"""The data files the code reads at run time end up in the snap.

The snap's ``kassa-appliance`` part is snapcraft's python plugin with ``source: .``: it runs
``pip install .`` into the part's venv (craft-parts ``python_plugin.py``), i.e. it installs
the wheel setuptools builds, and a wheel holds a package's non-Python files only when
``[tool.setuptools.package-data]`` lists them. (tests/snap_staging.py copies the source
tree instead, so it cannot see a missing entry.) So: every non-Python file under each
package must match its package's patterns — the MAX bot's Russian Trusted CA bundle above
all, without which TLS to MAX fails on a device — and each package ships ``py.typed``.

``test_a_built_wheel_carries_the_package_data`` builds the wheel for real when the
interpreter has a setuptools that reads this pyproject (>= 77: ``license`` is an SPDX
string); it was run with setuptools 84 and lists the same files.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from kassa_appliance.channels.maxbot.tls import CA_BUNDLE_NAME
from snap_staging import SNAPCRAFT_YAML, load_yaml

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "src"


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def _top_level_packages() -> list[str]:
    return sorted(
        path.parent.name
        for path in SOURCE.glob("*/__init__.py")
        if not path.parent.name.endswith(".egg-info")
    )


def _data_files(package: str) -> set[str]:
    """Non-Python files of a package tree, relative to the package directory."""
    root = SOURCE / package
    return {
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }


def _listed(package: str) -> set[str]:
    patterns = _pyproject()["tool"]["setuptools"]["package-data"].get(package, [])
    root = SOURCE / package
    return {
        path.relative_to(root).as_posix()
        for pattern in patterns
        for path in root.glob(pattern)
        if path.is_file()
    }


def test_the_snap_installs_the_project_with_the_python_plugin() -> None:
    part = load_yaml(SNAPCRAFT_YAML)["parts"]["kassa-appliance"]
    assert part["plugin"] == "python"
    assert (REPO / part["source"]).resolve() == REPO
    assert _pyproject()["tool"]["setuptools"]["packages"]["find"]["where"] == ["src"]


@pytest.mark.parametrize("package", _top_level_packages())
def test_every_data_file_of_a_package_is_listed_in_package_data(package: str) -> None:
    assert _data_files(package) - _listed(package) == set()
    assert "py.typed" in _listed(package)


def test_the_max_ca_bundle_is_package_data() -> None:
    bundle = f"channels/maxbot/{CA_BUNDLE_NAME}"
    assert (SOURCE / "kassa_appliance" / bundle).read_text(encoding="ascii").count(
        "BEGIN CERTIFICATE"
    ) >= 2  # the root and its Sub CA
    assert bundle in _listed("kassa_appliance")


def _setuptools_reads_this_pyproject() -> bool:
    try:
        import setuptools
    except ImportError:
        return False
    major = int(setuptools.__version__.split(".", 1)[0])
    return major >= 77


@pytest.mark.skipif(
    not _setuptools_reads_this_pyproject(), reason="needs setuptools >= 77 (SPDX license string)"
)
def test_a_built_wheel_carries_the_package_data(tmp_path: Path) -> None:
    """What ``pip install .`` in the python plugin installs, built offline from a copy of
    the project (setuptools writes build/ and *.egg-info next to the sources)."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, project / name)
    shutil.copytree(
        SOURCE, project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    out = tmp_path / "wheel"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-w",
            str(out),
            str(project),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    (wheel,) = out.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in _top_level_packages():
        for name in _data_files(package):
            assert f"{package}/{name}" in names
