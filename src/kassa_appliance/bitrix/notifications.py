"""Bitrix24 notifications to the portal's admins, once per problem of the kassa.

Each status snapshot the heartbeat takes is shown to :meth:`ProblemNotifier.observe`
(cheap, no I/O), which works out the kassa's problems from the fleet fields:

* ``fn-expiry``: the FN stops working within :data:`FN_EXPIRY_DAYS` days (``fn_expiry``);
* ``ofd-backlog``: the oldest document not sent to the OFD is older than
  :data:`OFD_BACKLOG_DAYS` days (``ofd_unsent``, ``ofd_oldest_unsent``; the FN blocks at 30);
* ``no-paper``: ``paper`` is false;
* ``queue-blocked``: the queue is waiting (``waiting``, the reason a person can act on).

A problem seen for :attr:`confirm_after` seconds is sent once, by
``im.notify.system.add`` (b24restdocs ``chats/notifications/im-notify-system-add.md``), to
each recipient, at the budget's :attr:`~kassa_appliance.bitrix.budget.Priority.STATUS`.
The recipients are ``bitrix.notify-users`` (``snap set`` or the central settings, applied
by :meth:`ProblemNotifier.set_recipients` without a restart); when it is empty, the admins:
the REST API lists no admins, so they are the users whose ``profile`` (``ADMIN``) the
link's own token shows — the admin who paired the kassa. What was sent, and to whom, is
kept in ``<data_dir>/notifications.json`` (written atomically after each notification), so
a restart sends nothing again and a user added to the list later hears of the problems
still there; a problem that clears is forgotten and is sent again when it comes back. A
recipient the portal refuses (not a user of it: ``USER_ID_EMPTY``) is logged and skipped,
so the others still get theirs; a portal that cannot be reached is retried. Each
notification's ``TAG`` names the kassa, the problem and the user, so a repeat replaces the
user's old one. A field not known yet (the facts are not polled yet after a start)
neither raises nor clears a problem.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from kassa_appliance.aio import wait_event
from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.errors import (
    AccessDenied,
    AuthError,
    BitrixError,
    RateLimited,
    ServerError,
    TransportError,
)
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.files import write_private_file

log = logging.getLogger(__name__)

NOTIFIED_FILE_NAME = "notifications.json"
FN_EXPIRY_DAYS = 30
OFD_BACKLOG_DAYS = 3
CONFIRM_SECONDS = 30.0
"""A problem must hold this long before it is sent (a queue that waits for a second while
the register is busy is no news for an admin)."""
RECHECK_SECONDS = 60.0

Problems = dict[str, str]
"""Problem code → the sentence for the notification."""


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def problems_of(status: Mapping[str, Any], now: datetime) -> tuple[Problems, frozenset[str]]:
    """The problems the status shows at ``now``, and the codes it cannot tell (unknown)."""
    problems: Problems = {}
    unknown: set[str] = set()
    expiry_text = status.get("fn_expiry")
    if isinstance(expiry_text, str) and expiry_text:
        try:
            expiry = date.fromisoformat(expiry_text[:10])
        except ValueError:
            unknown.add("fn-expiry")
        else:
            days = (expiry - now.date()).days
            if days < 0:
                problems["fn-expiry"] = f"срок ФН истёк {expiry_text[:10]}: замените ФН"
            elif days <= FN_EXPIRY_DAYS:
                problems["fn-expiry"] = (
                    f"ФН перестанет работать {expiry_text[:10]} (через {days} дн.): "
                    "замените ФН заранее"
                )
    else:
        unknown.add("fn-expiry")
    unsent = status.get("ofd_unsent")
    if isinstance(unsent, int) and not isinstance(unsent, bool):
        oldest = _parse_time(status.get("ofd_oldest_unsent"))
        if unsent > 0 and oldest is not None:
            age = (now - oldest).days
            if age > OFD_BACKLOG_DAYS:
                problems["ofd-backlog"] = (
                    f"{unsent} док. не отправлены в ОФД, самый старый — {age} дн. назад; "
                    "через 30 дн. ФН заблокируется: проверьте связь с ОФД"
                )
    else:
        unknown.add("ofd-backlog")
    paper = status.get("paper")
    if paper is False:
        problems["no-paper"] = "нет бумаги: вставьте рулон"
    elif paper is not True:
        unknown.add("no-paper")
    waiting = status.get("waiting")
    if isinstance(waiting, str) and waiting:
        problems["queue-blocked"] = f"очередь чеков стоит: {waiting}"
    elif not status.get("register_online") or status.get("queue_depth"):
        # Jobs pending with no reason yet (e.g. just after a start): not known to move.
        unknown.add("queue-blocked")
    return problems, frozenset(unknown)


class ProblemNotifier:
    def __init__(
        self,
        rest: RestClient,
        *,
        kassa_id: str,
        data_dir: Path,
        tagged: bool = True,
        confirm_after: float = CONFIRM_SECONDS,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        recipients: Iterable[int] = (),
    ) -> None:
        """``tagged``: send a ``TAG`` per kassa, problem and user (an application token; a
        webhook would need ``CLIENT_ID`` with it), so a repeat replaces the old one.
        ``recipients``: the user ids to notify; empty: the admin who paired the kassa."""
        self._rest = rest
        self.kassa_id = kassa_id
        self._path = data_dir / NOTIFIED_FILE_NAME
        self._tagged = tagged
        self.confirm_after = confirm_after
        self._clock = clock
        self._recipients = tuple(dict.fromkeys(recipients))
        self._sent_to: dict[str, list[int]] = {}
        """Problem code → the users notified so far (a code sent without it: all were)."""
        self._sent: dict[str, str] = self._load()
        self._seen_since: dict[str, float] = {}
        self._current: Problems = {}
        self._admins: list[int] | None = None
        self._wanted = asyncio.Event()

    @property
    def sent(self) -> dict[str, str]:
        """Problem code → when it was sent (ISO time), as persisted."""
        return dict(self._sent)

    def _load(self) -> dict[str, str]:
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            log.warning("%s unreadable (%s): notifications start afresh", self._path, error)
            return {}
        sent = data.get("sent") if isinstance(data, dict) else None
        if not isinstance(sent, dict):
            return {}
        sent_to = data.get("sent_to")
        for code, users in (sent_to if isinstance(sent_to, dict) else {}).items():
            if isinstance(users, list):
                self._sent_to[str(code)] = [u for u in users if isinstance(u, int)]
        return {str(code): str(at) for code, at in sent.items()}

    def _save(self) -> None:
        document = {"kassa": self.kassa_id, "sent": self._sent, "sent_to": self._sent_to}
        write_private_file(self._path, json.dumps(document, indent=2) + "\n")

    @property
    def recipients(self) -> tuple[int, ...]:
        """The user ids notified (empty: the admin who paired the kassa)."""
        return self._recipients

    def set_recipients(self, users: Iterable[int]) -> None:
        """Notify these users from now on (central settings); new ones hear of the problems
        still there."""
        recipients = tuple(dict.fromkeys(users))
        if recipients != self._recipients:
            self._recipients = recipients
            self._wanted.set()

    def _complete(self, code: str) -> bool:
        """Everyone who should hear of ``code`` has."""
        if code not in self._sent:
            return False
        if not self._recipients or code not in self._sent_to:
            return True  # the admins (resolved once), or sent before recipients were kept
        return set(self._recipients) <= set(self._sent_to[code])

    def observe(self, status: Mapping[str, Any]) -> None:
        """Take in a status snapshot; wake the sender when there is news."""
        if not status:
            return
        problems, unknown = problems_of(status, self._clock())
        now = time.monotonic()
        for code in problems:
            self._seen_since.setdefault(code, now)
        for code in list(self._seen_since):
            if code not in problems and code not in unknown:
                del self._seen_since[code]
        self._current = {**problems}
        cleared = [
            c for c in {*self._sent, *self._sent_to} if c not in problems and c not in unknown
        ]
        if cleared:
            for code in cleared:
                self._sent.pop(code, None)
                self._sent_to.pop(code, None)
            self._save()
        if any(not self._complete(code) for code in problems):
            self._wanted.set()

    def due(self) -> Problems:
        """New problems that have held for ``confirm_after`` seconds."""
        now = time.monotonic()
        return {
            code: text
            for code, text in self._current.items()
            if not self._complete(code)
            and now - self._seen_since.get(code, now) >= self.confirm_after
        }

    async def run(self) -> None:
        """Send what is due, whenever :meth:`observe` has news (and re-check each minute,
        for a problem still waiting out ``confirm_after``)."""
        while True:
            self._wanted.clear()
            await self.send_due()
            wait = RECHECK_SECONDS if not self._pending() else max(self.confirm_after / 2, 0.05)
            await wait_event(self._wanted, wait)

    def _pending(self) -> bool:
        return any(not self._complete(code) for code in self._current)

    async def send_due(self) -> list[str]:
        """Send each due problem to each recipient not told yet; the codes sent."""
        due = self.due()
        if not due:
            return []
        recipients = list(self._recipients) or await self._admin_ids()
        sent: list[str] = []
        for code, text in due.items():
            message = f"Касса {self.kassa_id}: {text}"
            told = set(self._sent_to.get(code, ()))
            for user_id in recipients:
                if user_id not in told:
                    await self._notify(user_id, code, message)
                    told.add(user_id)
                    self._sent_to[code] = sorted(told)
                    self._save()
            if not recipients:
                log.warning("no admin to notify about %s: %s", self.kassa_id, text)
            self._sent.setdefault(code, self._clock().isoformat(timespec="seconds"))
            self._save()
            sent.append(code)
            log.info("notified user(s) %s: %s", ", ".join(map(str, recipients)), message)
        return sent

    async def _notify(self, user_id: int, code: str, message: str) -> None:
        """One notification; a refusal of this user (not a user of the portal) is logged
        and skipped, a portal that cannot be reached or a missing scope raise (retried)."""
        params: dict[str, Any] = {"USER_ID": user_id, "MESSAGE": message}
        if self._tagged:
            params["TAG"] = f"kassa-appliance|{self.kassa_id}|{code}|{user_id}"
        try:
            await self._rest.result("im.notify.system.add", params, priority=Priority.STATUS)
        except (TransportError, ServerError, RateLimited, AuthError, AccessDenied):
            raise
        except BitrixError as error:
            log.warning("Bitrix24 user %s cannot be notified about %s: %s", user_id, code, error)

    async def _admin_ids(self) -> list[int]:
        if self._admins is None:
            profile = await self._rest.result("profile", {}, priority=Priority.STATUS)
            admins: list[int] = []
            if isinstance(profile, dict) and profile.get("ADMIN") in (True, "Y", "true"):
                admins.append(int(profile["ID"]))
            self._admins = admins
        return self._admins
