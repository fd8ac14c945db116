"""The appliance's configuration: one pydantic model shared by the daemon, the CLI and the
snap configure hook, so a value the hook accepts is exactly a value the daemon can run on.

On a device the configure hook renders ``$SNAP_DATA/config.json`` from ``snap set`` keys
(``register.usb-path`` → ``register.usb_path``: dashes in snap keys become underscores here;
the mapping lives in :mod:`kassa_appliance.appliance.hooks.settings`). Off a device (development,
``make demo``) a missing file means the embedded default: the simulated register and no
Bitrix24 link unless one is configured. On a device (``$SNAP`` set) a missing file means
"no register chosen": the simulator is never the silent default there.

The ``check_*`` functions are the value rules. The model runs them on every load, and the
configure hook runs them on every ``snap set``, so both reject exactly the same values. Each
raises ``ValueError`` with a reason that reads after the offending value, e.g.
``"is not a valid INN; expected 10 or 12 digits"``.

``config.json`` carries a ``schema`` number. :func:`migrate_config_document` upgrades older
documents (the post-refresh hook rewrites the file; :func:`load_config` migrates in memory).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from kassa_appliance.appliance.config_errors import describe_validation_error
from kassa_appliance.bitrix.settings import (
    BitrixConfig,
    check_portal_url,
    check_user_ids,
    check_webhook_url,
)
from kassa_appliance.channels.automation.settings import AutomationConfig
from kassa_appliance.channels.b24bot.settings import B24BotConfig
from kassa_appliance.channels.lan.settings import LanConfig
from kassa_appliance.channels.maxbot.settings import MaxBotConfig
from kassa_appliance.channels.relay.settings import RelayConfig
from kassa_appliance.files import write_private_file
from kassa_appliance.inputs import shorten
from kassa_appliance.registers.settings import RegisterConfig, check_lib_path, check_usb_path
from kassa_appliance.setting_checks import (
    SettingsSection,
    check_http_url,
    check_kassa_id,
    first_control_character,
    is_loopback,
    optional,
)

CONFIG_FILE_NAME = "config.json"
DATA_DIR_ENV = "KASSA_DATA_DIR"
CONFIG_SCHEMA_VERSION = 1
"""Version of the config.json layout; bump it and add a step to ``_MIGRATIONS``."""

OPERATOR_NAME_MAX = 64
"""FFD tag 1021 (cashier) holds at most 64 characters."""


class ConfigSchemaError(ValueError):
    """config.json is not a document this version can read (wrong shape or newer schema)."""


__all__ = [  # the sections other parts own, composed here, and their rules
    "BitrixConfig",
    "RegisterConfig",
    "check_http_url",
    "check_kassa_id",
    "check_lib_path",
    "check_portal_url",
    "check_usb_path",
    "check_user_ids",
    "check_webhook_url",
    "write_private_file",
]

# -- value rules of the sections the appliance itself owns -----------------------------------


def _inn_check_digit(digits: str, weights: tuple[int, ...]) -> int:
    return sum(int(d) * w for d, w in zip(digits, weights, strict=False)) % 11 % 10


def check_vatin(value: str) -> str:
    """Russian INN: 10 digits (organisation) or 12 digits (person) with valid check digits."""
    if not (value.isascii() and value.isdigit() and len(value) in (10, 12)):
        raise ValueError("is not a valid INN; expected 10 or 12 digits")
    if len(value) == 10:
        valid = _inn_check_digit(value, (2, 4, 10, 3, 5, 9, 4, 6, 8)) == int(value[9])
    else:
        valid = _inn_check_digit(value, (7, 2, 4, 10, 3, 5, 9, 4, 6, 8)) == int(
            value[10]
        ) and _inn_check_digit(value, (3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8)) == int(value[11])
    if not valid:
        raise ValueError("is not a valid INN; its check digits do not match")
    return value


def check_operator_name(value: str) -> str:
    if not value.strip():
        raise ValueError("is not allowed; expected the cashier's name")
    char = first_control_character(value)
    if char is not None:
        raise ValueError(
            f"contains the control character {shorten(char)}; "
            "expected the cashier's name as plain text on one line"
        )
    if len(value) > OPERATOR_NAME_MAX:
        raise ValueError(f"is too long; expected at most {OPERATOR_NAME_MAX} characters")
    return value


class KassaConfig(SettingsSection):
    id: str = "kassa-1"

    _id = field_validator("id")(check_kassa_id)


class OperatorConfig(SettingsSection):
    name: str | None = None
    vatin: str | None = None

    _name = field_validator("name")(optional(check_operator_name))
    _vatin = field_validator("vatin")(optional(check_vatin))


class CompanyConfig(SettingsSection):
    taxation: Literal["osn", "usnIncome", "usnIncomeOutcome", "esn", "patent"] | None = None


class ShiftConfig(SettingsSection):
    auto_open: bool = True
    auto_close: bool = True
    """On an expired (> 24 h) shift: close it and open a new one (True), or block the
    queue with a clear status until someone closes the shift (False)."""


class LogConfig(SettingsSection):
    level: Literal["debug", "info", "warning", "error"] = "info"


def lan_port_clash(lan: LanConfig, register: RegisterConfig) -> str | None:
    """The LAN API would listen where this appliance's own Web Requests register answers
    (both default to 16732): it could not bind, or the daemon would print through itself."""
    if not lan.enabled or register.driver != "webrequests":
        return None
    parts = urlsplit(register.url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    host = parts.hostname or ""
    ports = {lan.port} | ({lan.kkm_port} if lan.kkm_port else set())
    if port not in ports or not (is_loopback(host) or host == lan.bind):
        return None
    name = "lan.port" if port == lan.port else "lan.kkm-port"
    return (
        f"{name} {port} is also the port of register.url ({shorten(register.url, 80)}, the "
        "Atol Web Requests server this appliance prints through); expected another "
        f"{name}, e.g. {port + 1}"
    )


# The section name "register" shadows ABCMeta.register on the model class; harmless (the
# field is read as an attribute of instances), so keep that warning out of hook output.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)

    class Config(SettingsSection):
        model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

        schema_version: int = Field(default=CONFIG_SCHEMA_VERSION, alias="schema")
        """Layout version of config.json (key ``schema``); see :func:`migrate_config_document`."""
        bitrix: BitrixConfig = Field(default_factory=BitrixConfig)
        kassa: KassaConfig = Field(default_factory=KassaConfig)
        register: RegisterConfig = Field(default_factory=RegisterConfig)
        operator: OperatorConfig = Field(default_factory=OperatorConfig)
        company: CompanyConfig = Field(default_factory=CompanyConfig)
        shift: ShiftConfig = Field(default_factory=ShiftConfig)
        log: LogConfig = Field(default_factory=LogConfig)
        b24bot: B24BotConfig = Field(default_factory=B24BotConfig)
        maxbot: MaxBotConfig = Field(default_factory=MaxBotConfig)
        automation: AutomationConfig = Field(default_factory=AutomationConfig)
        lan: LanConfig = Field(default_factory=LanConfig)
        relay: RelayConfig = Field(default_factory=RelayConfig)

        @model_validator(mode="after")
        def _lan_port_not_the_registers(self) -> Config:
            problem = lan_port_clash(self.lan, self.register)
            if problem is not None:
                raise ValueError(problem)
            return self

        @field_validator("schema_version")
        @classmethod
        def _schema(cls, value: int) -> int:
            if value != CONFIG_SCHEMA_VERSION:
                raise ValueError(f"is not supported; expected {CONFIG_SCHEMA_VERSION}")
            return value


def unconfigured_config() -> Config:
    """What a device runs on before the configure hook wrote anything: no register chosen."""
    return Config(register=RegisterConfig(driver=None))


def _add_schema_field(document: dict[str, Any]) -> dict[str, Any]:
    return {**document, "schema": 1}


_MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {0: _add_schema_field}
"""Step ``n`` turns a schema-``n`` document into schema ``n + 1``. Files written before the
``schema`` key existed are schema 0."""


def migrate_config_document(document: object) -> tuple[dict[str, Any], bool]:
    """Upgrade a parsed config.json to the current schema; returns (document, changed)."""
    if not isinstance(document, dict):
        raise ConfigSchemaError("config.json is not a JSON object")
    version = document.get("schema", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ConfigSchemaError(f"config.json: schema {version!r} is not a schema number")
    if version > CONFIG_SCHEMA_VERSION:
        raise ConfigSchemaError(
            f"config.json has schema {version}, newer than this version understands "
            f"({CONFIG_SCHEMA_VERSION}); refusing to touch it"
        )
    migrated: dict[str, Any] = document
    for step in range(version, CONFIG_SCHEMA_VERSION):
        migrated = _MIGRATIONS[step](migrated)
    return migrated, version != CONFIG_SCHEMA_VERSION


def default_data_dir() -> Path:
    """$KASSA_DATA_DIR, else $SNAP_DATA inside a snap, else ~/.local/share/kassa-appliance."""
    explicit = os.environ.get(DATA_DIR_ENV)
    if explicit:
        return Path(explicit)
    snap_data = os.environ.get("SNAP_DATA")
    if snap_data:
        return Path(snap_data)
    return Path.home() / ".local" / "share" / "kassa-appliance"


def load_config(data_dir: Path, *, on_device: bool | None = None) -> Config:
    """Read ``config.json`` from the data dir, migrating an older schema in memory.

    A missing file gives the defaults off a device and :func:`unconfigured_config` on one
    (``on_device`` defaults to "is ``$SNAP`` set").
    """
    path = data_dir / CONFIG_FILE_NAME
    if not path.exists():
        if on_device is None:
            on_device = bool(os.environ.get("SNAP"))
        return unconfigured_config() if on_device else Config()
    try:
        document, _ = migrate_config_document(json.loads(path.read_text(encoding="utf-8")))
        return Config.model_validate(document)
    except ValidationError as error:
        problems = "; ".join(describe_validation_error(error)[:5])
        raise ConfigSchemaError(f"{path} is not a valid configuration: {problems}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ConfigSchemaError(f"{path} is not valid JSON: {error}") from None


def config_to_json(config: Config) -> str:
    """Serialise with secrets revealed: this is the file the daemon reads (mode 0600)."""

    def reveal(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, dict):
            return {key: reveal(item) for key, item in value.items()}
        return value

    data = reveal(config.model_dump(mode="python", by_alias=True))
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n"


def save_config(data_dir: Path, config: Config) -> None:
    write_private_file(data_dir / CONFIG_FILE_NAME, config_to_json(config))
