"""Sections of ``status.json`` published by parts of the daemon beside the engine.

The engine's status is the body of the file; a part such as the Bitrix24 link adds a
section (``link``: its loops' unexpected errors, the items it gave up on) with
:func:`publish`, and calls :func:`changed` when it has news, so the status file writer
(:class:`kassa_appliance.daemon.StatusFileWriter`) rewrites the file. Keyed by data
directory, so several appliances in one test process do not mix.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

Provider = Callable[[], object]

_sections: dict[Path, dict[str, Provider]] = {}
_listeners: dict[Path, list[Callable[[], None]]] = {}


def _key(data_dir: Path) -> Path:
    return data_dir.resolve()


def publish(data_dir: Path, name: str, provider: Provider) -> Callable[[], None]:
    """Add section ``name``; returns the function that removes it again."""
    sections = _sections.setdefault(_key(data_dir), {})
    sections[name] = provider
    changed(data_dir)

    def withdraw() -> None:
        if sections.get(name) is provider:
            del sections[name]

    return withdraw


def snapshot(data_dir: Path) -> dict[str, object]:
    """Every published section's current value."""
    return {name: provider() for name, provider in _sections.get(_key(data_dir), {}).items()}


def on_change(data_dir: Path, listener: Callable[[], None]) -> Callable[[], None]:
    """Call ``listener`` whenever a section of ``data_dir`` has news; returns the
    function that stops it."""
    listeners = _listeners.setdefault(_key(data_dir), [])
    listeners.append(listener)
    return lambda: listeners.remove(listener) if listener in listeners else None


def changed(data_dir: Path) -> None:
    for listener in list(_listeners.get(_key(data_dir), [])):
        listener()
