"""Who may create jobs: Bitrix24 users, or the users of some departments.

``bitrix.allowed-users`` names users; ``bitrix.allowed-departments`` names departments of the
company structure, **with their sub-departments** (an admin who allows "Sales" means the
shops under it too; the structure is a tree, ``department.get`` gives each department's
``PARENT``). A job is admitted when its creator is an allowed user or works in an allowed
department or below one; with neither set anyone may create jobs.

:class:`CreatorCheck` answers the intake at once, without I/O (:mod:`.intake` takes an item
in one event-loop step): *admitted*, *refused* (the lookup answered "not in an allowed
department") or *wait* (not known yet). A creator not known yet is looked up by
:class:`DepartmentDirectory` in its own loop, off the intake's path, so a slow or failing
portal never holds up other jobs: ``user.get`` (``FILTER {"@ID": [...]}``, 50 users a
request, ``UF_DEPARTMENT``; b24restdocs ``api-reference/user/user-get.md``), then
``department.get`` (``ID`` as a list, top-level filter keys; dev.1c-bitrix.ru
``rest_help/departments/department_get.php``) for the parents of departments it has not
seen, level by level up to :data:`MAX_DEPTH`. Answers are cached for :data:`USER_TTL` /
:data:`DEPARTMENT_TTL` seconds, at most :data:`MAX_USERS` / :data:`MAX_DEPARTMENTS` entries
(the oldest go first). A job waiting for its creator is not taken (its item stays
``new``); when a lookup answers, ``on_answer`` asks the link to reconcile, which takes the
job again and now gets an answer. A failing lookup is retried with back-off and shown in
``status`` (``link.creator_lookups``); its jobs wait meanwhile, they are never refused
for it — so is an answer without ``UF_DEPARTMENT`` (a scope that does not carry it): that
is "not told", not "in no department". ``user.get`` does not list bots, e-mail users or
Open Channels users: such a creator is in no department.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.errors import BitrixError
from kassa_appliance.bitrix.rest import RestClient

log = logging.getLogger(__name__)

USER_TTL = 300.0
"""Seconds a user's departments are trusted: a user moved out of an allowed department
may create jobs for this long after."""
DEPARTMENT_TTL = 900.0
"""Seconds a department's parent is trusted (the company structure changes rarely)."""
MAX_USERS = 2000
MAX_DEPARTMENTS = 5000
MAX_WAITING = 1000
"""Creators waiting for a lookup at once; more wait for a later reconciliation."""
MAX_DEPTH = 32
"""Levels of the company structure walked up from a user's department."""
PAGE = 50
"""Records per ``user.get``/``department.get`` page (fixed by Bitrix24)."""
SHOWN_IDS = 10


def show_ids(ids: Iterable[int]) -> str:
    """``3, 5, 8`` — at most :data:`SHOWN_IDS` ids, then ``…``."""
    listed = sorted(ids)
    text = ", ".join(str(i) for i in listed[:SHOWN_IDS])
    return text + (", …" if len(listed) > SHOWN_IDS else "") if listed else "none"


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def _ids_of(value: Any) -> frozenset[int]:
    """``UF_DEPARTMENT`` as ids: a list (``[1, 5]`` or ``["1"]``) or one value."""
    values = value if isinstance(value, list) else [value]
    return frozenset(i for v in values if (i := _whole(v)) is not None)


@dataclass(frozen=True)
class _User:
    departments: frozenset[int]
    found: bool
    at: float


@dataclass(frozen=True)
class _Department:
    parent: int | None
    at: float


_Entry = TypeVar("_Entry", _User, _Department)


@dataclass(frozen=True)
class Membership:
    """A lookup's answer: is the user in an allowed department (or below one)?"""

    allowed: bool
    departments: frozenset[int]
    """The user's own departments (``UF_DEPARTMENT``)."""
    found: bool
    """False: ``user.get`` does not list the user (a bot, a deleted or an e-mail user)."""


class DepartmentDirectory:
    """The cached company structure: which departments each creator is in, and above them."""

    def __init__(
        self,
        rest: RestClient,
        *,
        on_answer: Callable[[], None],
        backoff: Callable[[int], float],
        user_ttl: float = USER_TTL,
        department_ttl: float = DEPARTMENT_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``on_answer`` is called after a round that decided a waiting creator (the link
        reconciles, so their jobs are taken); ``backoff(attempt)`` spaces retries."""
        self._rest = rest
        self._on_answer = on_answer
        self._backoff = backoff
        self._user_ttl = user_ttl
        self._department_ttl = department_ttl
        self._clock = clock
        self.allowed: frozenset[int] = frozenset()
        self._users: OrderedDict[int, _User] = OrderedDict()
        self._departments: OrderedDict[int, _Department] = OrderedDict()
        self._waiting: dict[int, None] = {}
        """Creators asked about and not decided yet (insertion ordered)."""
        self._missing: set[int] = set()
        self._wanted = asyncio.Event()
        self.lookups = 0
        """``user.get``/``department.get`` requests made."""
        self.last_error: str | None = None
        self.answered_at: float | None = None

    # -- the intake's side: no I/O -----------------------------------------------------

    def membership(self, user_id: int) -> Membership | None:
        """The answer from the cache, or None after queuing a lookup (the job waits)."""
        answer = self._evaluate(user_id)
        if answer is None and (user_id in self._waiting or len(self._waiting) < MAX_WAITING):
            self._waiting[user_id] = None
            self._wanted.set()
        return answer

    def _evaluate(self, user_id: int) -> Membership | None:
        user = self._fresh(self._users, user_id, self._user_ttl)
        if user is None:
            return None
        if user.departments & self.allowed:
            return Membership(True, user.departments, user.found)
        above = self._with_parents(user.departments)
        if above is None:
            return None
        return Membership(bool(above & self.allowed), user.departments, user.found)

    def _with_parents(self, departments: frozenset[int]) -> frozenset[int] | None:
        """The departments and every one above them, up to the first allowed one; None
        when a parent is not known yet (it is noted in ``_missing`` for the next request)."""
        seen: set[int] = set()
        level = set(departments)
        missing: set[int] = set()
        for _ in range(MAX_DEPTH):
            upper: set[int] = set()
            for department in level - seen:
                seen.add(department)
                if department in self.allowed:
                    return frozenset(seen)  # allowed: what is above does not matter
                entry = self._fresh(self._departments, department, self._department_ttl)
                if entry is None:
                    missing.add(department)
                elif entry.parent is not None:
                    upper.add(entry.parent)
            level = upper - seen
            if not level:
                break
        if missing:
            self._missing |= missing
            return None
        return frozenset(seen)

    def _fresh(self, cache: OrderedDict[int, _Entry], key: int, ttl: float) -> _Entry | None:
        entry = cache.get(key)
        if entry is None or self._clock() - entry.at >= ttl:
            return None
        return entry

    def snapshot(self) -> dict[str, Any]:
        """For ``kassa-appliance status`` (``link.creator_lookups``)."""
        return {
            "allowed_departments": sorted(self.allowed),
            "waiting_creators": len(self._waiting),
            "cached_users": len(self._users),
            "cached_departments": len(self._departments),
            "lookups": self.lookups,
            "last_error": self.last_error,
        }

    # -- the lookup loop -----------------------------------------------------------------

    async def run(self) -> None:
        """Look the waiting creators up whenever there are some; a portal error is retried
        with back-off (the jobs wait), anything else ends here (the supervisor restarts)."""
        failures = 0
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            try:
                decided = await self.look_up()
            except BitrixError as error:
                failures += 1
                self.last_error = str(error)
                delay = self._backoff(failures)
                log.warning(
                    "looking up job creators' departments failed (%s); %d creator(s) wait, "
                    "retry in %.1fs",
                    error,
                    len(self._waiting),
                    delay,
                )
                self._wanted.set()
                await asyncio.sleep(delay)
                continue
            failures = 0
            self.last_error = None
            if decided:
                self.answered_at = time.time()
                self._on_answer()

    async def look_up(self) -> int:
        """Fetch what the waiting creators need until each is decided; how many were."""
        decided = 0
        while self._waiting:
            unknown = [
                user
                for user in self._waiting
                if self._fresh(self._users, user, self._user_ttl) is None
            ]
            if unknown:
                await self._fetch_users(unknown[:PAGE])
            self._missing.clear()
            for user in list(self._waiting):
                if self._evaluate(user) is not None:
                    del self._waiting[user]
                    decided += 1
            missing = sorted(self._missing)
            if missing:
                await self._fetch_departments(missing[:PAGE])
            elif not unknown:
                break  # nothing more to fetch (cannot happen: every fetch decides more)
        return decided

    async def _fetch_users(self, user_ids: list[int]) -> None:
        self.lookups += 1
        records = await self._rest.result(
            "user.get",
            {"FILTER": {"@ID": user_ids}, "select": ["ID", "UF_DEPARTMENT"]},
            priority=Priority.JOB,
        )
        now = self._clock()
        found: dict[int, frozenset[int]] = {}
        for record in records if isinstance(records, list) else []:
            if isinstance(record, Mapping) and (user := _whole(record.get("ID"))) is not None:
                if "UF_DEPARTMENT" not in record:  # not "in no department": not told
                    raise BitrixError(
                        "NO_UF_DEPARTMENT",
                        "the answer has no UF_DEPARTMENT; the Kassa app needs the user scope "
                        "to read users' departments",
                        method="user.get",
                    )
                found[user] = _ids_of(record.get("UF_DEPARTMENT"))
        for user in user_ids:
            entry = _User(found.get(user, frozenset()), user in found, now)
            _remember(self._users, user, entry, MAX_USERS)

    async def _fetch_departments(self, department_ids: list[int]) -> None:
        self.lookups += 1
        records = await self._rest.result(
            "department.get", {"ID": department_ids}, priority=Priority.JOB
        )
        now = self._clock()
        parents: dict[int, int | None] = {}
        for record in records if isinstance(records, list) else []:
            if isinstance(record, Mapping) and (department := _whole(record.get("ID"))):
                parents[department] = _whole(record.get("PARENT"))
        for department in department_ids:  # one not listed (deleted): the top of its branch
            entry = _Department(parents.get(department), now)
            _remember(self._departments, department, entry, MAX_DEPARTMENTS)


def _remember(cache: OrderedDict[int, _Entry], key: int, value: _Entry, limit: int) -> None:
    cache[key] = value
    cache.move_to_end(key)
    while len(cache) > limit:
        cache.popitem(last=False)


@dataclass(frozen=True)
class Verdict:
    admitted: bool | None
    """True, False (refused) or None: wait, the creator's departments are being looked up."""
    reason: str = ""
    """Why not (``admitted`` False): which users and departments are allowed, and the
    user's own departments."""


ADMITTED = Verdict(True)
WAIT = Verdict(None)


class CreatorCheck:
    """The intake's rule for who may create (and cancel) jobs."""

    def __init__(self, users: frozenset[int] = frozenset()) -> None:
        self.users = frozenset(users)
        self.departments: frozenset[int] = frozenset()
        self.directory: DepartmentDirectory | None = None
        self._unwired_logged = False

    def set_departments(
        self, departments: frozenset[int], directory: DepartmentDirectory | None = None
    ) -> None:
        if directory is not None:
            self.directory = directory
        self.departments = frozenset(departments)
        if self.directory is not None:
            self.directory.allowed = self.departments

    @property
    def restricted(self) -> bool:
        return bool(self.users or self.departments)

    def check(self, user_id: int | None) -> Verdict:
        """May ``user_id`` act on jobs? Never does I/O (a lookup is queued instead)."""
        if not self.restricted or (user_id is not None and user_id in self.users):
            return ADMITTED
        if not self.departments or user_id is None:
            return Verdict(False, f"who is not in bitrix.allowed-users ({show_ids(self.users)})")
        if self.directory is None:
            if not self._unwired_logged:
                log.error("allowed departments set but no department lookup wired: jobs wait")
                self._unwired_logged = True
            return WAIT
        membership = self.directory.membership(user_id)
        if membership is None:
            return WAIT
        if membership.allowed:
            return ADMITTED
        return Verdict(False, self._not_in_departments(membership))

    def _not_in_departments(self, membership: Membership) -> str:
        users = f"not in bitrix.allowed-users ({show_ids(self.users)}) and " if self.users else ""
        own = (
            f"the user's departments: {show_ids(membership.departments)}"
            if membership.found
            else "Bitrix24 lists no such employee (user.get)"
        )
        return (
            f"who is {users}not in the allowed departments {show_ids(self.departments)} "
            f"(bitrix.allowed-departments, sub-departments included; {own})"
        )
