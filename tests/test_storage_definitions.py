"""The Bitrix24 storages have one definition: src/kassa_appliance/bitrix/storage.json, which the
Kassa app (app/src/lib/storage.ts) imports; the daemon's constants must say the same."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from kassa_appliance.bitrix import protocol

STORAGE_JSON = Path(protocol.__file__).with_name("storage.json")


def _entities() -> dict[str, dict[str, Any]]:
    data = json.loads(STORAGE_JSON.read_text(encoding="utf-8"))
    return {entry["entity"]: entry for entry in data["entities"]}


def test_job_storage_matches_the_daemon() -> None:
    entities = _entities()
    assert protocol.JOB_ENTITY in entities
    assert tuple(entities[protocol.JOB_ENTITY]["properties"]) == protocol.JOB_PROPERTIES


def test_device_storage_matches_the_daemon() -> None:
    entities = _entities()
    assert protocol.DEVICE_ENTITY in entities
    assert tuple(entities[protocol.DEVICE_ENTITY]["properties"]) == protocol.DEVICE_PROPERTIES


def test_every_definition_is_usable() -> None:
    """Codes Bitrix24 accepts (a property code may not start with a digit), known access
    levels, no duplicates."""
    for code, entry in _entities().items():
        assert code.isalnum() and code.isupper() and len(code) <= 20, code
        assert entry["name"].strip(), code
        assert set(entry["access"].values()) <= {"R", "W", "X"}, code
        properties = entry["properties"]
        assert len(properties) == len(set(properties)), code
        assert all(p.isupper() and not p[0].isdigit() for p in properties), code
