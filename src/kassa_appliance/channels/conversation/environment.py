"""What the state machine asks of the outside world: the kassas to choose from, and the
commands (help, the state of each kassa, this user's last receipts, a return)."""

from __future__ import annotations

import logging
import time
from datetime import datetime
from decimal import Decimal, InvalidOperation

from kassa_appliance.bitrix.errors import BitrixError
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.channels.conversation import texts
from kassa_appliance.channels.conversation.draft import Conversation, Draft
from kassa_appliance.channels.conversation.kassas import describe_kassa, read_jobs, read_kassas
from kassa_appliance.channels.conversation.machine import Reply, Step
from kassa_appliance.channels.conversation.positions import format_money
from kassa_appliance.channels.conversation.settings import ConversationSettings
from kassa_appliance.channels.conversation.store import ChatJob, ConversationStore
from kassa_appliance.channels.conversation.transport import Button, Incoming

__all__ = ["ChatEnvironment"]

log = logging.getLogger(__name__)

KASSA_LIST_TTL = 60.0
RECENT_COUNT = 5
HELP_KEYBOARD = (
    (
        Button(texts.BUTTON_KASSAS, "cmd:kassas"),
        Button(texts.BUTTON_LAST, "cmd:last"),
        Button("Возврат", "cmd:return"),
    ),
)


class ChatEnvironment:
    def __init__(
        self,
        *,
        messenger: str,
        store: ConversationStore,
        rest: RestClient,
        settings: ConversationSettings,
    ) -> None:
        self.messenger = messenger
        self.store = store
        self.rest = rest
        self.settings = settings
        self._kassas: tuple[float, list[str]] | None = None

    async def kassas(self) -> list[str]:
        if self.settings.kassas:
            return list(self.settings.kassas)
        now = time.monotonic()
        if self._kassas is not None and now - self._kassas[0] < KASSA_LIST_TTL:
            return self._kassas[1]
        try:
            names = [view.kassa for view in await read_kassas(self.rest)]
        except BitrixError as error:
            log.warning("could not read the kassas (KASSADEV): %s", error)
            return self._kassas[1] if self._kassas is not None else []
        self._kassas = (now, names)
        return names

    def original(self, job_id: str, user_id: str) -> Draft | None:
        job = self.store.job(job_id)
        if job is None or job.messenger != self.messenger or job.user_id != user_id:
            return None
        draft = Draft.from_json(job.draft)
        draft.kassa = job.kassa
        return draft

    async def command(self, name: str, incoming: Incoming, conversation: Conversation) -> Step:
        if name == "kassas":
            return Step([await self._kassa_report()])
        if name in ("last", "return"):
            return await self._recent(incoming, conversation, pick=name == "return")
        return Step([Reply(texts.HELP, HELP_KEYBOARD)])

    async def _kassa_report(self) -> Reply:
        try:
            views = await read_kassas(self.rest)
        except BitrixError as error:
            log.warning("could not read the kassas (KASSADEV): %s", error)
            return Reply(texts.KASSAS_UNAVAILABLE)
        if self.settings.kassas:
            views = [v for v in views if v.kassa in self.settings.kassas]
        if not views:
            return Reply(texts.KASSA_NONE)
        now = time.time()
        return Reply("\n".join([texts.KASSAS_TITLE, *(describe_kassa(v, now) for v in views)]))

    async def _recent(self, incoming: Incoming, conversation: Conversation, *, pick: bool) -> Step:
        jobs = self.store.recent_jobs(self.messenger, incoming.user_id, RECENT_COUNT)
        if not jobs:
            return Step([Reply(texts.RECENT_NONE)])
        published = [job.job_id for job in jobs if job.stage == "published"]
        try:
            views = await read_jobs(self.rest, published)
        except BitrixError as error:
            log.warning("could not read the chat's jobs (KASSAJOB): %s", error)
            views = {}
        returned = self.store.returned([job.job_id for job in jobs])
        lines = [texts.RECENT_TITLE]
        buttons: list[tuple[Button, ...]] = []
        choices: list[str] = []
        for job in jobs:
            view = views.get(job.job_id)
            state = "creating" if job.stage == "creating" else (view.state if view else "unknown")
            lines.append(_recent_line(job, state, view.result if view else None))
            if job.kind == "sell" and state == "done" and job.job_id not in returned:
                label = texts.BUTTON_RETURN.format(
                    date=_when(job.created), total=format_money(_total(job))
                )
                buttons.append((Button(label[:60], f"ret:{len(choices)}"),))
                choices.append(job.job_id)
        conversation.return_choices = choices
        if not pick:
            return Step([Reply("\n".join(lines), tuple(buttons))])
        if not choices:
            return Step([Reply(texts.RETURN_NONE)])
        return Step([Reply(texts.RETURN_PICK, tuple(buttons))])


def _when(created: float) -> str:
    return datetime.fromtimestamp(created).strftime("%d.%m %H:%M")


def _total(job: ChatJob) -> Decimal:
    try:
        return Decimal(job.total)
    except InvalidOperation:
        return Decimal(0)


def _recent_line(job: ChatJob, state: str, result: object) -> str:
    words = texts.STATE_WORDS.get(state, texts.STATE_WORDS["unknown"])
    if state == "done" and isinstance(result, dict):
        params = result.get("fiscalParams")
        if isinstance(params, dict) and params.get("fiscalDocumentNumber") is not None:
            words += f", ФД № {params['fiscalDocumentNumber']}"
    kind = texts.RECENT_KIND_RETURN if job.kind == "sellReturn" else ""
    return texts.RECENT_LINE.format(
        date=_when(job.created),
        kind=kind,
        total=format_money(_total(job)),
        kassa=job.kassa,
        state=words,
    )
