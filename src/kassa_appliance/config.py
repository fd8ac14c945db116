"""The appliance's configuration: one pydantic model shared by the daemon, the CLI and the
snap configure hook, so a value the hook accepts is exactly a value the daemon can run on.

On a device the configure hook renders ``$SNAP_DATA/config.json`` from ``snap set`` keys
(``register.driver`` → ``register.driver``; dashes in snap keys become underscores here).
Off a device (development, ``make demo``) a missing file means the embedded default: the
simulated register and no Bitrix24 link unless one is configured.
"""

from __future__ import annotations

import json
import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

CONFIG_FILE_NAME = "config.json"
DATA_DIR_ENV = "KASSA_DATA_DIR"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BitrixConfig(_Section):
    portal: str | None = None
    """Portal base URL, e.g. https://example.bitrix24.ru"""
    client_id: str | None = None
    client_secret: SecretStr | None = None
    refresh_token: SecretStr | None = None
    webhook: SecretStr | None = None
    token_url: str = "https://oauth.bitrix.info/oauth/token/"
    allowed_users: tuple[int, ...] = ()


class KassaConfig(_Section):
    id: str = "kassa-1"


class RegisterConfig(_Section):
    driver: Literal["simulator", "fptr10", "webrequests"] | None = "simulator"
    """None means "not chosen yet": on a device the simulator is never the silent default."""
    usb_path: str = "auto"
    lib_path: str | None = None
    url: str = "http://127.0.0.1:16732"
    print_delay: Decimal = Decimal("0")
    """Simulator only: seconds spent printing each document."""
    task_timeout: float = 60.0
    """Seconds a single driver call may take before it is treated as a lost connection."""


class OperatorConfig(_Section):
    name: str | None = None
    vatin: str | None = None


class CompanyConfig(_Section):
    taxation: Literal["osn", "usnIncome", "usnIncomeOutcome", "esn", "patent"] | None = None


class ShiftConfig(_Section):
    auto_open: bool = True
    auto_close: bool = True
    """On an expired (> 24 h) shift: close it and open a new one (True), or block the
    queue with a clear status until someone closes the shift (False)."""


class LogConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


class Config(_Section):
    bitrix: BitrixConfig = Field(default_factory=BitrixConfig)
    kassa: KassaConfig = Field(default_factory=KassaConfig)
    register: RegisterConfig = Field(default_factory=RegisterConfig)
    operator: OperatorConfig = Field(default_factory=OperatorConfig)
    company: CompanyConfig = Field(default_factory=CompanyConfig)
    shift: ShiftConfig = Field(default_factory=ShiftConfig)
    log: LogConfig = Field(default_factory=LogConfig)


def default_data_dir() -> Path:
    """$KASSA_DATA_DIR, else $SNAP_DATA inside a snap, else ~/.local/share/kassa-appliance."""
    explicit = os.environ.get(DATA_DIR_ENV)
    if explicit:
        return Path(explicit)
    snap_data = os.environ.get("SNAP_DATA")
    if snap_data:
        return Path(snap_data)
    return Path.home() / ".local" / "share" / "kassa-appliance"


def load_config(data_dir: Path) -> Config:
    """Read ``config.json`` from the data dir; a missing file gives the defaults."""
    path = data_dir / CONFIG_FILE_NAME
    if not path.exists():
        return Config()
    return Config.model_validate_json(path.read_text(encoding="utf-8"))


def config_to_json(config: Config) -> str:
    """Serialise with secrets revealed: this is the file the daemon reads (mode 0600)."""

    def reveal(value: Any) -> Any:
        if isinstance(value, SecretStr):
            return value.get_secret_value()
        if isinstance(value, dict):
            return {key: reveal(item) for key, item in value.items()}
        return value

    data = reveal(config.model_dump(mode="python"))
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True, default=str) + "\n"


def write_private_file(path: Path, text: str) -> None:
    """Write atomically (temp file, fsync, rename, fsync dir) with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_config(data_dir: Path, config: Config) -> None:
    write_private_file(data_dir / CONFIG_FILE_NAME, config_to_json(config))
