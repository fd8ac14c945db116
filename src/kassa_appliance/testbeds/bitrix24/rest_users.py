"""The emulated company structure: ``user.get`` with ``UF_DEPARTMENT`` and ``department.get``.

* ``user.get`` (b24restdocs ``api-reference/user/user-get.md``): the portal's users (bots
  excluded, as the docs say), 50 a page (``start``), sorted by ``sort``/``order`` (default
  ``ID`` ascending). Filter keys come inside ``FILTER``/``filter`` or at the top level, with
  the docs' prefixes ``@`` (IN), ``!@`` (NOT IN), ``=``, ``!``/``!=``, ``>``, ``>=``, ``<``,
  ``<=`` and ``%`` (substring); ``UF_DEPARTMENT`` matches when any of the user's
  departments does. ``select`` limits the fields (``*`` all, ``UF_*`` the ``UF_`` ones;
  ``ID`` always). Each record: ``ID`` (string), ``ACTIVE``, ``NAME``, ``LAST_NAME``,
  ``EMAIL``, ``IS_ONLINE``, ``UF_DEPARTMENT`` (a list of numbers), ``USER_TYPE``.
* ``department.get`` (dev.1c-bitrix.ru ``rest_help/departments/department_get.php``): the
  departments, filtered by the top-level ``ID``, ``NAME``, ``PARENT``, ``UF_HEAD`` (each
  may be a list), 50 a page; each record ``{"ID": "5", "NAME": …, "SORT": 500, "PARENT":
  "1", "UF_HEAD": "11"}`` — the top department has no ``PARENT`` (nor ``UF_HEAD`` when it has
  no head).

:class:`CompanyStructure` starts with department 1 (the company) and every user in it; a
test adds departments (:meth:`~CompanyStructure.add`) and places users
(:meth:`~CompanyStructure.place`); ``user_fields = False`` answers like an app without the
scope for user fields (no ``UF_DEPARTMENT``). Not saved with the state file. Bound into the method
table by :func:`user_handlers`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kassa_appliance.testbeds.bitrix24.rest_imbot_state import BOT_USER_IDS_FROM
from kassa_appliance.testbeds.bitrix24.rest_types import Answer, ApiError, Caller, Handler
from kassa_appliance.testbeds.bitrix24.state import PortalState, User

PAGE = 50
COMPANY_ID = 1
_CONTROL_KEYS = frozenset(
    {"FILTER", "SORT", "ORDER", "SELECT", "START", "ADMIN_MODE", "IMAGE_RESIZE"}
)
_PREFIXES = ("!@", "!=", ">=", "<=", "@", "=", "!", ">", "<", "%")


@dataclass
class Department:
    id: int
    name: str
    parent: int | None
    head: int | None = None
    sort: int = 500

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"ID": str(self.id), "NAME": self.name, "SORT": self.sort}
        if self.parent is not None:
            record["PARENT"] = str(self.parent)
        if self.head is not None:
            record["UF_HEAD"] = str(self.head)
        return record


@dataclass
class CompanyStructure:
    departments: dict[int, Department] = field(
        default_factory=lambda: {COMPANY_ID: Department(COMPANY_ID, "Компания", None)}
    )
    members: dict[int, list[int]] = field(default_factory=dict)
    """User id → ``UF_DEPARTMENT``; a user not listed is in the company's department."""
    user_fields: bool = True
    """False: answer as for an app whose scope carries no user fields (``UF_*`` left out)."""

    def add(self, department_id: int, name: str, parent: int | None = COMPANY_ID) -> Department:
        if parent is not None and parent not in self.departments:
            raise ValueError(f"parent department {parent} does not exist")
        department = Department(department_id, name, parent)
        self.departments[department_id] = department
        return department

    def place(self, user_id: int, departments: list[int]) -> None:
        """Put a user in these departments (``[]``: in none, e.g. an extranet user)."""
        self.members[user_id] = list(departments)

    def departments_of(self, user_id: int) -> list[int]:
        return list(self.members.get(user_id, [COMPANY_ID]))


def _values(value: Any) -> list[Any]:
    """A filter value as a list (a JSON list, a PHP-style ``{0: …}`` map or one value)."""
    if isinstance(value, list):
        return value
    if isinstance(value, Mapping):
        return list(value.values())
    return [value]


def _split(key: str) -> tuple[str, str]:
    for prefix in _PREFIXES:
        if key.startswith(prefix):
            return prefix, key[len(prefix) :].upper()
    return "", key.upper()


def _number(value: Any) -> float | None:
    try:
        return float(str(value))
    except (TypeError, ValueError):
        return None


def _one_matches(prefix: str, have: Any, want: Any) -> bool:
    if prefix in ("", "=", "@", "!", "!=", "!@"):
        return str(have).casefold() == str(want).casefold() or (
            isinstance(have, bool)
            and str(want).upper() in (("Y", "TRUE", "1") if have else ("N", "FALSE", "0"))
        )
    if prefix == "%":
        return str(want).casefold() in str(have).casefold()
    a, b = _number(have), _number(want)
    if a is None or b is None:
        return False
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[prefix]


def _matches(record: Mapping[str, Any], key: str, value: Any) -> bool:
    prefix, name = _split(key)
    have = record.get(name)
    haves = have if isinstance(have, list) else [have]
    hit = any(_one_matches(prefix, h, w) for h in haves for w in _values(value))
    return not hit if prefix in ("!", "!=", "!@") else hit


def _filters(params: Mapping[str, Any], *, top_level: bool) -> dict[str, Any]:
    wanted: dict[str, Any] = {}
    for key, value in params.items():
        if key.upper() == "FILTER" and isinstance(value, Mapping):
            wanted.update({str(k): v for k, v in value.items()})
        elif top_level and key.upper() not in _CONTROL_KEYS and key != "auth":
            wanted[str(key)] = value
    return wanted


def _param(params: Mapping[str, Any], name: str) -> Any:
    for key, value in params.items():
        if key.upper() == name:
            return value
    return None


def _page(records: list[dict[str, Any]], params: Mapping[str, Any]) -> Answer:
    try:
        start = int(_param(params, "START") or 0)
    except (TypeError, ValueError):
        raise ApiError(400, "ERROR_ARGUMENT", "start must be a number") from None
    if start < 0:  # the docs' "no count" mode: the first page, no total
        return Answer(records[:PAGE])
    page = records[start : start + PAGE]
    following = start + PAGE if start + PAGE < len(records) else None
    return Answer(page, next=following, total=len(records))


def _sorted(records: list[dict[str, Any]], params: Mapping[str, Any]) -> list[dict[str, Any]]:
    by = str(_param(params, "SORT") or "ID").upper()
    descending = str(_param(params, "ORDER") or "ASC").upper() == "DESC"

    def key(record: dict[str, Any]) -> tuple[int, float, str]:
        value = record.get(by)
        number = _number(value)
        return (0, number, "") if number is not None else (1, 0.0, str(value or ""))

    return sorted(records, key=key, reverse=descending)


def _select(record: dict[str, Any], select: Any) -> dict[str, Any]:
    fields = [str(f).upper() for f in _values(select)] if select else ["*"]
    if "*" in fields:
        return record
    return {
        name: value
        for name, value in record.items()
        if name == "ID" or name in fields or ("UF_*" in fields and name.startswith("UF_"))
    }


def _user_record(user: User, company: CompanyStructure) -> dict[str, Any]:
    first, _, last = user.name.partition(" ")
    return {
        "ID": str(user.id),
        "ACTIVE": True,
        "NAME": first,
        "LAST_NAME": last,
        "EMAIL": f"user{user.id}@example.invalid",
        "IS_ONLINE": "N",
        "USER_TYPE": "employee" if company.departments_of(user.id) else "extranet",
        **({"UF_DEPARTMENT": company.departments_of(user.id)} if company.user_fields else {}),
    }


def user_handlers(state: PortalState, company: CompanyStructure) -> dict[str, Handler]:
    async def users(caller: Caller, params: dict[str, Any]) -> Answer:
        wanted = _filters(params, top_level=True)
        records = [
            _user_record(user, company)
            for user in state.users.values()
            if user.id < BOT_USER_IDS_FROM
        ]
        found = [r for r in records if all(_matches(r, k, v) for k, v in wanted.items())]
        select = _param(params, "SELECT")
        return _page([_select(r, select) for r in _sorted(found, params)], params)

    async def departments(caller: Caller, params: dict[str, Any]) -> Answer:
        wanted = _filters(params, top_level=True)
        records = [d.record() for d in company.departments.values()]
        found = [r for r in records if all(_matches(r, k, v) for k, v in wanted.items())]
        return _page(_sorted(found, params), params)

    return {"user.get": users, "department.get": departments}
