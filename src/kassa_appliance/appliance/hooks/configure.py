"""The configure hook: ``snap set`` keys → ``$SNAP_DATA/config.json`` for the daemon.

snapd runs it on install, after every refresh and on every ``snap set``/``snap unset``, with
the new values visible through ``snapctl get`` but not yet committed. Exiting non-zero makes
``snap set`` fail and snapd discard the new values; the file is untouched in that case, so
the previous configuration stays in force.

The daemon is restarted only when the configuration it runs on changed (every key is used
by the daemon, so any effective change restarts; re-setting the same values does not). On
first install there is no previous file and nothing to restart: snapd starts the service
after the hook.

A pairing code (``bitrix.pairing``) is expanded here once it is valid: its values are set
as the separate keys (``bitrix.portal`` …, ``kassa.id``; the code wins over what they held)
and ``bitrix.pairing`` is unset, in the same transaction as the rest (a failing hook
discards both). The outcome's ``notes`` say what it replaced; the hook prints them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from kassa_appliance.appliance.config import (
    CONFIG_FILE_NAME,
    Config,
    ConfigSchemaError,
    config_to_json,
    migrate_config_document,
    write_private_file,
)
from kassa_appliance.appliance.hooks.pairing import PAIRING_KEY, pairing_notes, pairing_values
from kassa_appliance.appliance.hooks.settings import KEYS_BY_NAME, SNAP_GROUPS, config_from_snap
from kassa_appliance.appliance.hooks.snap_values import lookup
from kassa_appliance.appliance.hooks.snapctl import Snapctl

DRIVER_UNSET_HEALTH = "choose a register: snap set kassa-appliance register.driver=fptr10"
DRIVER_UNSET_CODE = "register-unconfigured"
"""The code the daemon uses for the same state (watchdog/daemon), so users see one code."""


@dataclass(frozen=True)
class ConfigureOutcome:
    written: bool
    restarted: bool
    notes: tuple[str, ...] = ()
    """Lines for the hook's output, e.g. what a pairing code replaced."""


def read_current_config(path: Path) -> Config | None:
    """The configuration the daemon runs on now; None if there is none or it is unreadable."""
    try:
        document, _ = migrate_config_document(json.loads(path.read_text(encoding="utf-8")))
        return Config.model_validate(document)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, ConfigSchemaError, ValidationError):
        return None


def configure(snapctl: Snapctl, data_dir: Path, *, service: str) -> ConfigureOutcome:
    """Validate every key, write config.json if it changed, restart the daemon if needed.

    Raises :class:`kassa_appliance.appliance.hooks.settings.InvalidSettings` on bad input, before
    anything is written.
    """
    document = snapctl.get_document(SNAP_GROUPS)
    config = config_from_snap(document)
    notes = tuple(pairing_notes(document, KEYS_BY_NAME))
    if notes:  # valid: keep its values as the separate keys, not the code
        snapctl.set(pairing_values(lookup(document, PAIRING_KEY)))
        snapctl.unset([PAIRING_KEY])
    path = data_dir / CONFIG_FILE_NAME
    existed = path.exists()
    current = read_current_config(path)
    text = config_to_json(config)
    written = not existed or path.read_bytes() != text.encode("utf-8")
    if written:
        write_private_file(path, text)
    restarted = existed and current != config
    if restarted:
        snapctl.restart(service)
    if config.register.driver is None:
        snapctl.set_health("blocked", DRIVER_UNSET_HEALTH, code=DRIVER_UNSET_CODE)
    elif restarted or not existed:
        # Configuration-level state only; the daemon reports the register's state itself.
        snapctl.set_health("okay")
    return ConfigureOutcome(written=written, restarted=restarted, notes=notes)
