"""What Web Requests clients may change at run time: ``<data dir>/lan-state.json``.

``PUT /api/v2/settings`` values, the device's name (``PUT /devices/1``) and whether the
device is active (``activateDevice``/``deactivateDevice``: an inactive device takes no LAN
requests; the engine keeps serving Bitrix24). Written atomically, mode 0600.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kassa_appliance.channels.lan.wr_shapes import DEFAULT_SETTINGS
from kassa_appliance.files import write_private_file

log = logging.getLogger(__name__)

FILE_NAME = "lan-state.json"


@dataclass
class LanState:
    path: Path
    active: bool = True
    name: str = ""
    settings: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SETTINGS))

    @classmethod
    def load(cls, data_dir: Path, default_name: str) -> LanState:
        path = data_dir / FILE_NAME
        state = cls(path, name=default_name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return state
        except (OSError, ValueError) as error:
            log.warning("LAN API: %s unreadable (%s); starting from defaults", path, error)
            return state
        if isinstance(data, dict):
            state.active = bool(data.get("active", True))
            if isinstance(data.get("name"), str) and data["name"]:
                state.name = data["name"]
            saved = data.get("settings")
            if isinstance(saved, dict):
                for key, value in saved.items():
                    if key in DEFAULT_SETTINGS and type(value) is type(DEFAULT_SETTINGS[key]):
                        state.settings[key] = value
        return state

    def save(self) -> None:
        text = json.dumps(
            {"active": self.active, "name": self.name, "settings": self.settings},
            ensure_ascii=False,
            indent=2,
        )
        write_private_file(self.path, text + "\n")
