"""The tenants and cashboxes the relay serves, kept in the registry bucket (JSON values).

Keys: ``tenant.<tenant>``, ``cashbox.<tenant>.<kassa>``, ``login.<sha256 of the ATOL login>``
(→ tenant) and ``token-key`` (the key ATOL Online tokens are signed with, created once by
whichever instance needs it first). Secrets are never stored: the cashbox secret as its
SHA-256 (it is a random 32-byte value, so a fast hash is enough), the ATOL password with
scrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from kassa_appliance.channels.relay.wire import KASSA_ID, TENANT_ID

SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1


class RegistryError(ValueError):
    """A registration value is wrong; the text says which and what was expected."""


def check_tenant_id(value: str) -> str:
    if not TENANT_ID.fullmatch(value):
        raise RegistryError(
            f"tenant id {value!r} is not allowed; expected 1-32 lower-case letters, digits "
            "or dashes, starting and ending with a letter or digit"
        )
    return value


def check_kassa_id(value: str) -> str:
    if not KASSA_ID.fullmatch(value):
        raise RegistryError(
            f"kassa id {value!r} is not allowed; expected 1-64 letters, digits, dashes or "
            "underscores starting with a letter or digit"
        )
    return value


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def secret_matches(given: str, stored_digest: str) -> bool:
    """Constant-time: the digests are compared, never the secrets or their lengths."""
    return hmac.compare_digest(secret_digest(given), stored_digest)


def password_hash(password: str, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode("utf-8", "surrogatepass"), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P
    )
    return f"scrypt${salt.hex()}${digest.hex()}"


def password_matches(given: str, stored: str) -> bool:
    try:
        _scheme, salt_hex, _digest = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    return hmac.compare_digest(password_hash(given, salt), stored)


def login_key(login: str) -> str:
    return "login." + hashlib.sha256(login.encode("utf-8", "surrogatepass")).hexdigest()


def tenant_key(tenant: str) -> str:
    return f"tenant.{tenant}"


def cashbox_key(tenant: str, kassa: str) -> str:
    return f"cashbox.{tenant}.{kassa}"


TOKEN_KEY = "token-key"


@dataclass(frozen=True)
class Tenant:
    id: str
    name: str
    atol_login: str | None = None
    atol_password_hash: str | None = None
    rate_per_second: float | None = None
    """Overrides the relay's ``--rate`` for this tenant."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Tenant:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class Cashbox:
    """One kassa of a tenant: a Bitrix24 REST cashbox and/or an ATOL Online group code."""

    tenant: str
    kassa: str
    secret_digest: str
    uuid_key: str
    """Hex key of the HMAC that makes the UUIDs the relay hands out unguessable."""
    vat: dict[str, str] = field(default_factory=dict)
    """Bitrix24 catalog VAT id → rate: ``"20"``, ``"10"``, ``"0"``, ``"none"``…"""
    ffd: str = "1.2"
    taxation: str | None = None
    payments_address: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Cashbox:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})

    def digest(self, check_id: str) -> str:
        """The 32-hex-digit id of a check in the results bucket and in the UUID we return."""
        key = bytes.fromhex(self.uuid_key)
        mac = hmac.new(key, check_id.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return mac.hexdigest()[:32]


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def new_uuid_key() -> str:
    return secrets.token_hex(32)
