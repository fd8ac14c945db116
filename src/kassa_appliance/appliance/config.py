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

import ipaddress
import json
import os
import re
import tempfile
import warnings
from collections.abc import Callable, Iterable
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from kassa_appliance.appliance.config_checks import first_control_character, parse_url
from kassa_appliance.appliance.config_errors import describe_validation_error
from kassa_appliance.inputs import shorten

CONFIG_FILE_NAME = "config.json"
DATA_DIR_ENV = "KASSA_DATA_DIR"
CONFIG_SCHEMA_VERSION = 1
"""Version of the config.json layout; bump it and add a step to ``_MIGRATIONS``."""

OPERATOR_NAME_MAX = 64
"""FFD tag 1021 (cashier) holds at most 64 characters."""

_KASSA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_USB_PORT_PATH = re.compile(r"[0-9]+-[0-9]+(?:\.[0-9]+)*")
_WEBHOOK_PATH = re.compile(r"/rest/[0-9]+/[A-Za-z0-9_]+/?")
_LOOPBACK_NAMES = frozenset({"localhost"})


class ConfigSchemaError(ValueError):
    """config.json is not a document this version can read (wrong shape or newer schema)."""


# -- value rules shared by the model and the configure hook ---------------------------------


def _is_loopback(host: str) -> bool:
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _checked_url(value: str, schemes: tuple[str, ...], wrong_scheme: str, example: str) -> Any:
    """:func:`parse_url`, with its problem turned into this key's reason."""
    try:
        return parse_url(value, schemes)
    except ValueError as error:
        if str(error) == "scheme":
            raise ValueError(f"{wrong_scheme}; {example}") from None
        raise ValueError(f"is not a valid URL: {error}; {example}") from None


def check_portal_url(value: str, *, allow_loopback_http: bool = True) -> str:
    """A portal base URL: ``https://host[:port]``, normalised without a trailing slash.

    ``allow_loopback_http`` admits ``http://127.0.0.1:…`` for the loopback emulator used
    by tests and the demo; the configure hook passes False (devices talk https only).
    """
    example = "expected e.g. https://example.bitrix24.ru"
    parts = _checked_url(value, ("http", "https"), "is not an https URL", example)
    plain_ok = allow_loopback_http and parts.scheme == "http" and _is_loopback(parts.hostname or "")
    if parts.scheme != "https" and not plain_ok:
        raise ValueError(f"is not an https URL; {example}")
    if parts.path not in ("", "/") or parts.query or parts.fragment or "@" in parts.netloc:
        raise ValueError(f"is not a portal address; {example} (no path)")
    return f"{parts.scheme}://{parts.netloc}"


def check_webhook_url(value: str, *, allow_loopback_http: bool = True) -> str:
    """An inbound webhook ``https://portal/rest/<user id>/<code>/``.

    The reasons never quote the value: it is a secret.
    """
    problem = "is not an inbound webhook URL; expected https://<portal>/rest/<user id>/<code>/"
    try:
        parts = parse_url(value, ("http", "https"))
    except ValueError:
        raise ValueError(problem) from None
    plain_ok = allow_loopback_http and parts.scheme == "http" and _is_loopback(parts.hostname or "")
    if (
        (parts.scheme != "https" and not plain_ok)
        or "@" in parts.netloc
        or not _WEBHOOK_PATH.fullmatch(parts.path)
        or parts.query
        or parts.fragment
    ):
        raise ValueError(problem)
    return value


def check_http_url(value: str) -> str:
    """An ``http://`` or ``https://`` URL with a host (the Atol Web Requests server)."""
    _checked_url(
        value, ("http", "https"), "is not an http(s) URL", "expected e.g. http://127.0.0.1:16732"
    )
    return value


def check_kassa_id(value: str) -> str:
    if not _KASSA_ID.fullmatch(value):
        raise ValueError(
            "is not allowed; expected 1-64 letters, digits, dashes or underscores "
            "starting with a letter or digit"
        )
    return value


_SERIAL_PORT = re.compile(r"/dev/tty[A-Za-z0-9]{1,16}")


def check_usb_path(value: str) -> str:
    """``auto`` (the first Atol found), a USB port path (udev DEVPATH basename) ``1-1.3``,
    or a serial port ``/dev/ttyACM0`` for registers reached as a COM port."""
    if value != "auto" and not (_USB_PORT_PATH.fullmatch(value) or _SERIAL_PORT.fullmatch(value)):
        raise ValueError(
            "is not allowed; expected auto, a USB port path such as 1-1.3 "
            "or a serial port such as /dev/ttyACM0"
        )
    return value


def check_lib_path(value: str) -> str:
    path = PurePosixPath(value)
    if not path.is_absolute() or ".." in path.parts or first_control_character(value):
        raise ValueError(
            "is not an absolute path; expected e.g. /var/snap/kassa-appliance/common/libfptr10.so"
        )
    return value


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


def check_user_ids(values: Iterable[int]) -> tuple[int, ...]:
    ids = tuple(values)
    if any(isinstance(user, bool) or user <= 0 for user in ids):
        raise ValueError("is not allowed; expected positive Bitrix24 user ids")
    return tuple(dict.fromkeys(ids))


def _optional(check: Callable[[str], str]) -> Callable[[str | None], str | None]:
    def run(value: str | None) -> str | None:
        return None if value is None else check(value)

    return run


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

    _portal = field_validator("portal")(_optional(check_portal_url))
    _token_url = field_validator("token_url")(check_http_url)
    _users = field_validator("allowed_users")(check_user_ids)

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            check_webhook_url(value.get_secret_value())
        return value


class KassaConfig(_Section):
    id: str = "kassa-1"

    _id = field_validator("id")(check_kassa_id)


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

    _usb_path = field_validator("usb_path")(check_usb_path)
    _lib_path = field_validator("lib_path")(_optional(check_lib_path))
    _url = field_validator("url")(check_http_url)


class OperatorConfig(_Section):
    name: str | None = None
    vatin: str | None = None

    _name = field_validator("name")(_optional(check_operator_name))
    _vatin = field_validator("vatin")(_optional(check_vatin))


class CompanyConfig(_Section):
    taxation: Literal["osn", "usnIncome", "usnIncomeOutcome", "esn", "patent"] | None = None


class ShiftConfig(_Section):
    auto_open: bool = True
    auto_close: bool = True
    """On an expired (> 24 h) shift: close it and open a new one (True), or block the
    queue with a clear status until someone closes the shift (False)."""


class LogConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"


# The section name "register" shadows ABCMeta.register on the model class; harmless (the
# field is read as an attribute of instances), so keep that warning out of hook output.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message='Field name "register"', category=UserWarning)

    class Config(_Section):
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
