"""The ``relay`` section of the configuration: the cloud relay connection (NATS JetStream).

Off by default. The rules here run on every load of ``config.json`` and on every
``snap set`` (the keys are in :mod:`kassa_appliance.appliance.hooks.keys_relay`).

The connection is always TLS with the server verified (the CA in ``ca_file``, or the
system's): the servers are ``tls://host:port`` URLs. ``user`` defaults to the name
``kassa-relay cashbox register`` gives the kassa (``kassa_<tenant>_<kassa>``).
"""

from __future__ import annotations

from pydantic import field_validator, model_validator

from kassa_appliance.channels.relay.wire import TENANT_ID, durable_name
from kassa_appliance.setting_checks import (
    SettingsSection,
    check_absolute_path,
    check_kassa_id,
    optional,
    parse_url,
)

MAX_SERVERS = 8


def check_server_url(value: str) -> str:
    try:
        parse_url(value, ("tls",))
    except ValueError as error:
        if str(error) == "scheme":
            raise ValueError(
                "is not allowed; expected tls://host:port (the relay's NATS servers, TLS only)"
            ) from None
        raise ValueError(f"is not a valid URL: {error}") from None
    return value


def check_tenant(value: str) -> str:
    if not TENANT_ID.fullmatch(value):
        raise ValueError(
            "is not allowed; expected 1-32 lower-case letters, digits or dashes (the tenant "
            "id the relay's operator gave you)"
        )
    return value


def check_relay_kassa(value: str) -> str:
    """The kassa's name on the relay: a kassa id like ``kassa.id`` (its default)."""
    return check_kassa_id(value)


def check_ca_file(value: str) -> str:
    return check_absolute_path(value, "/var/snap/kassa-appliance/common/relay-ca.pem")


class RelayConfig(SettingsSection):
    enabled: bool = False
    servers: tuple[str, ...] = ()
    tenant: str | None = None
    kassa: str | None = None
    """The kassa id on the relay; default: ``kassa.id``."""
    user: str | None = None
    password: str | None = None
    ca_file: str | None = None
    fetch_batch: int = 10

    @field_validator("servers")
    @classmethod
    def _servers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(value) > MAX_SERVERS:
            raise ValueError(f"has {len(value)} servers; expected at most {MAX_SERVERS}")
        return tuple(check_server_url(url) for url in value)

    _tenant = field_validator("tenant")(optional(check_tenant))
    _kassa = field_validator("kassa")(optional(check_relay_kassa))
    _ca = field_validator("ca_file")(optional(check_ca_file))

    @field_validator("fetch_batch")
    @classmethod
    def _batch(cls, value: int) -> int:
        if not 1 <= value <= 256:
            raise ValueError("is not allowed; expected 1 to 256")
        return value

    @model_validator(mode="after")
    def _complete(self) -> RelayConfig:
        if self.enabled:
            missing = [
                name
                for name, value in (
                    ("servers", self.servers),
                    ("tenant", self.tenant),
                    ("password", self.password),
                )
                if not value
            ]
            if missing:
                raise ValueError(
                    f"{', '.join('relay.' + m for m in missing)} must be set when "
                    "relay.enabled is true; expected the values from the relay's operator"
                )
        return self

    def user_for(self, kassa: str) -> str:
        assert self.tenant is not None
        return self.user or durable_name(self.tenant, kassa)
