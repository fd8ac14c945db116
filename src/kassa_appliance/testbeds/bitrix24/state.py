"""The emulated portal's data: users, OAuth tokens, webhooks and ``entity`` storages.

Everything lives in memory; with a state file it is loaded at start and written back
(atomically) shortly after changes and at shutdown, so an emulator restarted on the same
file keeps its storages and the refresh tokens it handed out.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kassa_appliance.files import write_private_file

Clock = Callable[[], float]

ADMIN_USER_ID = 1
REFRESH_TOKEN_LIFETIME = 180 * 86400.0
"""A refresh token lives 180 days (b24restdocs settings/oauth/auto-renewal.md)."""
CASHIER_USER_ID = 2


def iso(unix: float) -> str:
    return datetime.fromtimestamp(int(unix), UTC).isoformat(timespec="seconds")


@dataclass
class Property:
    code: str
    name: str
    type: str = "S"
    sort: int = 500


@dataclass
class Item:
    id: int
    name: str
    created_by: int
    modified_by: int
    date_create: float
    timestamp_x: float
    properties: dict[str, str | None] = field(default_factory=dict)
    section: int | None = None
    active: str = "Y"
    sort: int = 500
    code: str | None = None

    def field_value(self, name: str) -> Any:
        """A filterable/sortable field by its Bitrix name (``PROPERTY_X`` for properties)."""
        if name.startswith("PROPERTY_"):
            return self.properties.get(name[len("PROPERTY_") :])
        return {
            "ID": self.id,
            "NAME": self.name,
            "CREATED_BY": self.created_by,
            "MODIFIED_BY": self.modified_by,
            "DATE_CREATE": iso(self.date_create),
            "TIMESTAMP_X": iso(self.timestamp_x),
            "ACTIVE": self.active,
            "SORT": self.sort,
            "SECTION": self.section,
            "CODE": self.code,
        }.get(name)


@dataclass
class Entity:
    id: int
    code: str
    name: str
    access: dict[str, str]
    properties: dict[str, Property] = field(default_factory=dict)
    items: dict[int, Item] = field(default_factory=dict)


@dataclass
class User:
    id: int
    name: str
    admin: bool


@dataclass
class AccessToken:
    user_id: int
    expires: float


class PortalState:
    """The portal: one local application (client id/secret), a few users, their data."""

    def __init__(
        self,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        access_ttl: float = 3600.0,
        refresh_ttl: float = REFRESH_TOKEN_LIFETIME,
        clock: Clock = time.time,
    ) -> None:
        self.client_id = client_id or f"local.{secrets.token_hex(7)}.{secrets.token_hex(4)}"
        self.client_secret = client_secret or secrets.token_urlsafe(32)
        self.member_id = secrets.token_hex(16)
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.clock = clock
        self.users: dict[int, User] = {
            ADMIN_USER_ID: User(ADMIN_USER_ID, "Admin", admin=True),
            CASHIER_USER_ID: User(CASHIER_USER_ID, "Cashier", admin=False),
        }
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, int] = {}
        """Live refresh tokens → their user. Each pairing starts an independent chain."""
        self.refresh_issued: dict[str, float] = {}
        """When each live refresh token was issued (it expires ``refresh_ttl`` later)."""
        self.webhooks: dict[str, int] = {}
        self.entities: dict[str, Entity] = {}
        self.next_id = 1
        self.refresh_count = 0
        self.dirty = False

    # -- ids and users --------------------------------------------------------------------

    def new_id(self) -> int:
        value = self.next_id
        self.next_id += 1
        return value

    def ensure_user(self, user_id: int, *, admin: bool = False) -> User:
        user = self.users.get(user_id)
        if user is None:
            user = User(user_id, f"User {user_id}", admin)
            self.users[user_id] = user
            self.dirty = True
        return user

    # -- tokens -------------------------------------------------------------------------

    def issue_refresh_token(self, user_id: int) -> str:
        """A pairing: the refresh token an admin would copy out of the app page."""
        self.ensure_user(user_id)
        token = secrets.token_hex(16)
        self.refresh_tokens[token] = user_id
        self.refresh_issued[token] = self.clock()
        self.dirty = True
        return token

    def issue_webhook(self, user_id: int) -> str:
        self.ensure_user(user_id)
        code = secrets.token_hex(8)
        self.webhooks[code] = user_id
        self.dirty = True
        return code

    def rotate(self, refresh_token: str) -> tuple[str, str, int, float] | None:
        """Single-use refresh: returns (access, new refresh, user, expires) or None.

        The model of the platform (docs/architecture.md, "Pairing and tokens"): a refresh
        token lives 180 days [documented]; once used it is invalid, and refreshing one chain
        leaves every other chain of the same user and app valid [both UNCONFIRMED: the
        strictest behaviour that the docs allow, so the appliance is tested against it].
        """
        user_id = self.refresh_tokens.pop(refresh_token, None)
        issued = self.refresh_issued.pop(refresh_token, None)
        if user_id is None:
            return None
        if issued is not None and self.clock() - issued > self.refresh_ttl:
            self.dirty = True
            return None  # expired: invalid_grant, like a used one
        access = secrets.token_hex(16)
        new_refresh = secrets.token_hex(16)
        expires = self.clock() + self.access_ttl
        self.access_tokens[access] = AccessToken(user_id, expires)
        self.refresh_tokens[new_refresh] = user_id
        self.refresh_issued[new_refresh] = self.clock()
        self.refresh_count += 1
        self.dirty = True
        return access, new_refresh, user_id, expires

    def expire_access_tokens(self) -> None:
        """Fault: every access token handed out so far answers ``expired_token`` now."""
        past = self.clock() - 1
        for token in self.access_tokens.values():
            token.expires = min(token.expires, past)
        self.dirty = True

    # -- persistence --------------------------------------------------------------------

    def to_json(self) -> str:
        data = {
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "member_id": self.member_id,
            "access_ttl": self.access_ttl,
            "next_id": self.next_id,
            "users": [asdict(u) for u in self.users.values()],
            "access_tokens": {k: asdict(v) for k, v in self.access_tokens.items()},
            "refresh_tokens": self.refresh_tokens,
            "refresh_issued": self.refresh_issued,
            "webhooks": self.webhooks,
            "entities": [
                {
                    "id": e.id,
                    "code": e.code,
                    "name": e.name,
                    "access": e.access,
                    "properties": [asdict(p) for p in e.properties.values()],
                    "items": [asdict(i) for i in e.items.values()],
                }
                for e in self.entities.values()
            ],
        }
        return json.dumps(data, ensure_ascii=False)

    def save(self, path: Path) -> None:
        write_private_file(path, self.to_json())
        self.dirty = False

    @classmethod
    def load(
        cls, path: Path, *, access_ttl: float | None = None, clock: Clock = time.time
    ) -> PortalState:
        data = json.loads(path.read_text(encoding="utf-8"))
        state = cls(
            client_id=data["client_id"],
            client_secret=data["client_secret"],
            access_ttl=access_ttl if access_ttl is not None else data["access_ttl"],
            clock=clock,
        )
        state.member_id = data["member_id"]
        state.next_id = data["next_id"]
        state.users = {u["id"]: User(**u) for u in data["users"]}
        state.access_tokens = {k: AccessToken(**v) for k, v in data["access_tokens"].items()}
        state.refresh_tokens = {k: int(v) for k, v in data["refresh_tokens"].items()}
        issued = data.get("refresh_issued") or {}  # older state files: issued "now"
        state.refresh_issued = {k: float(issued.get(k, clock())) for k in state.refresh_tokens}
        state.webhooks = {k: int(v) for k, v in data["webhooks"].items()}
        for raw in data["entities"]:
            entity = Entity(raw["id"], raw["code"], raw["name"], dict(raw["access"]))
            entity.properties = {p["code"]: Property(**p) for p in raw["properties"]}
            entity.items = {i["id"]: Item(**i) for i in raw["items"]}
            state.entities[entity.code] = entity
        return state
