"""The conversation engine for one messenger: updates in, replies out, receipts into the
Bitrix24 outbox (KASSAJOB), exactly once.

:meth:`ConversationService.handle` is idempotent by ``update_id``: the chat's new state,
the update's mark and the replies it causes are one store transaction, and the replies go
out from the store's outbox under stable keys, so a re-delivered update is ignored and a
reply queued before a crash is sent after it, once.

[Пробить] on the preview creates the job with an id derived from the confirming update
(``chat-<messenger>-<16 hex of sha256(chat id, update id)>``), in this order:

1. the store records "creating job X" (with the task and the chat's state), in the same
   transaction as the update's mark — a repeated tap is a later update that finds the
   conversation already printing, a re-delivered tap is ignored;
2. ``delivery.expect(X, [chat target], kassa=…)`` — the worker will bring the outcome back;
3. the KASSAJOB item is added (``bitrix.storage.publish_job``) — on every attempt after the
   first, the item is looked for by NAME first, so a crash or a lost answer between 2 and
   3 never adds it twice;
4. the store records "published" and the "sent to the kassa" reply.

A job left "creating" (Bitrix24 unreachable, a restart) is taken up again by
:meth:`resume` and by the next :meth:`handle`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Protocol

from kassa_appliance.bitrix.budget import Priority
from kassa_appliance.bitrix.errors import BitrixError
from kassa_appliance.bitrix.protocol import JOB_ENTITY
from kassa_appliance.bitrix.rest import RestClient
from kassa_appliance.bitrix.storage import publish_job
from kassa_appliance.channels.conversation import texts
from kassa_appliance.channels.conversation.access import cashier_for
from kassa_appliance.channels.conversation.draft import Conversation, State
from kassa_appliance.channels.conversation.environment import ChatEnvironment
from kassa_appliance.channels.conversation.machine import Machine, Reply
from kassa_appliance.channels.conversation.positions import format_money
from kassa_appliance.channels.conversation.receipt_task import TaskNotPrintable, build_task
from kassa_appliance.channels.conversation.settings import ConversationSettings
from kassa_appliance.channels.conversation.store import ChatJob, ConversationStore, OutMessage
from kassa_appliance.channels.conversation.transport import ChatTransport, Incoming

__all__ = ["ConversationService", "ExpectingDelivery", "job_id_for", "message_key"]

log = logging.getLogger(__name__)

RESUME_INTERVAL = 5.0
"""Seconds between retries of a job left "creating", when handle() passes by."""


class ExpectingDelivery(Protocol):
    """The part of the delivery worker (channels/delivery, contracts.md) the engine uses."""

    def expect(self, job_id: str, targets: list[dict[str, Any]], *, kassa: str | None) -> None: ...


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def job_id_for(messenger: str, chat_id: str, update_id: str) -> str:
    """The job id a confirming update creates: the same update always gives the same id."""
    return f"chat-{messenger}-{_digest(chat_id, update_id)}"


def message_key(messenger: str, *parts: str) -> str:
    """A stable key ≤ 64 chars of [A-Za-z0-9_-] for one outgoing message."""
    return f"{messenger}-{_digest(*parts)}"


class ConversationService:
    def __init__(
        self,
        *,
        transport: ChatTransport,
        store: ConversationStore,
        rest: RestClient,
        delivery: ExpectingDelivery,
        settings: ConversationSettings,
    ) -> None:
        self.transport = transport
        self.messenger = transport.messenger
        self.store = store
        self.rest = rest
        self.delivery = delivery
        self.settings = settings
        self.environment = ChatEnvironment(
            messenger=self.messenger, store=store, rest=rest, settings=settings
        )
        self.machine = Machine(settings, self.environment)
        self._locks: dict[str, asyncio.Lock] = {}
        self._next_resume = 0.0

    @property
    def source(self) -> str:
        """KASSAJOB SOURCE of the jobs this service creates."""
        return f"chat-{self.messenger}"

    def _lock(self, chat_id: str) -> asyncio.Lock:
        return self._locks.setdefault(chat_id, asyncio.Lock())

    # --- updates ---------------------------------------------------------------------------

    async def handle(self, incoming: Incoming) -> None:
        """Handle one update, once. Raises only what the transport raised while sending
        (the update is recorded by then; its unsent replies go out on the next call)."""
        if incoming.messenger != self.messenger:
            raise ValueError(
                f"update of messenger {incoming.messenger!r} given to the {self.messenger!r}"
                " conversation service"
            )
        if time.monotonic() >= self._next_resume:
            await self._resume_jobs()
        async with self._lock(incoming.chat_id):
            if self.store.seen(self.messenger, incoming.update_id):
                await self._flush(incoming.chat_id)
                return
            notice = await self._handle_new(incoming)
        if incoming.action is not None:
            try:
                await self.transport.answer_action(incoming, notice)
            except Exception as error:  # the answer is a courtesy; the update is handled
                log.warning("could not answer the button press: %s", error)
        async with self._lock(incoming.chat_id):
            await self._flush(incoming.chat_id)
            job_id = self._printing_job(incoming.chat_id)
        if job_id is not None:
            job = self.store.job(job_id)
            if job is not None and job.stage == "creating":
                await self._create(job)

    async def _handle_new(self, incoming: Incoming) -> str | None:
        chat_id, update_id = incoming.chat_id, incoming.update_id
        cashier = cashier_for(self.settings.cashiers, incoming)
        if cashier is None:
            log.info("%s user %s is not on the cashiers list", self.messenger, incoming.user_id)
            refusal = texts.NOT_ALLOWED.format(user_id=incoming.user_id)
            self.store.commit(
                messenger=self.messenger,
                chat_id=chat_id,
                update_id=update_id,
                conversation=None,
                messages=self._keyed(incoming, [Reply(refusal)]),
            )
            return refusal
        body = self.store.conversation(self.messenger, chat_id)
        conv = Conversation.loads(body) if body else Conversation()
        step = await self.machine.step(conv, incoming, cashier)
        replies = list(step.replies)
        job: ChatJob | None = None
        if step.print_now:
            try:
                task = build_task(conv.draft, cashier, self.settings)
            except TaskNotPrintable as error:
                conv.state = State.PREVIEW
                replies.append(Reply(texts.NOT_PRINTABLE.format(reason=error)))
            else:
                job = self._new_job(conv, incoming, task)
                conv.printing_job, conv.printed_revision = job.job_id, conv.revision
                conv.printed_kassa = job.kassa
                replies.append(Reply(texts.SENDING))
        self.store.commit(
            messenger=self.messenger,
            chat_id=chat_id,
            update_id=update_id,
            conversation=conv.dumps(),
            messages=self._keyed(incoming, replies),
            job=job,
        )
        if step.notice is not None and any(reply.text == step.notice for reply in replies):
            # The chat gets that text as a message anyway; where the messenger shows a
            # button's answer as a message too (Bitrix24's Command.answer), it would be
            # there twice. MAX shows its default toast instead.
            return None
        return step.notice

    def _keyed(self, incoming: Incoming, replies: Sequence[Reply]) -> list[OutMessage]:
        return [
            OutMessage(
                message_key(self.messenger, incoming.chat_id, incoming.update_id, str(n)),
                incoming.chat_id,
                reply.text,
                reply.keyboard,
            )
            for n, reply in enumerate(replies)
        ]

    def _new_job(self, conv: Conversation, incoming: Incoming, task: dict[str, Any]) -> ChatJob:
        draft = conv.draft
        assert draft.kassa is not None  # the preview is shown only with a kassa
        return ChatJob(
            job_id=job_id_for(self.messenger, incoming.chat_id, incoming.update_id),
            messenger=self.messenger,
            chat_id=incoming.chat_id,
            user_id=incoming.user_id,
            kassa=draft.kassa,
            kind=draft.kind,
            total=str(draft.total),
            task=task,
            draft=draft.to_json(),
            target=dict(self.transport.reply_target(incoming.chat_id)),
            return_of=draft.return_of,
            stage="creating",
            attempts=0,
            item_id=None,
            created=time.time(),
        )

    def _printing_job(self, chat_id: str) -> str | None:
        body = self.store.conversation(self.messenger, chat_id)
        if not body:
            return None
        conv = Conversation.loads(body)
        return conv.printing_job if conv.state is State.PRINTING else None

    # --- the job ---------------------------------------------------------------------------

    async def resume(self) -> None:
        """Take up jobs left "creating" and send replies left unsent (call at start and
        now and then; cheap when there is nothing to do)."""
        await self._resume_jobs()
        chats = dict.fromkeys(m.chat_id for m in self.store.unsent(self.messenger))
        for chat_id in chats:
            async with self._lock(chat_id):
                with contextlib.suppress(Exception):
                    await self._flush(chat_id)

    async def _resume_jobs(self) -> None:
        self._next_resume = time.monotonic() + RESUME_INTERVAL
        for job in self.store.creating_jobs(self.messenger):
            await self._create(job)

    async def _create(self, job: ChatJob) -> None:
        async with self._lock(f"job:{job.job_id}"):
            current = self.store.job(job.job_id)
            if current is None or current.stage != "creating":
                return
            before = self.store.job_attempt(job.job_id)
            try:
                self.delivery.expect(job.job_id, [job.target], kassa=job.kassa)
            except Exception:  # the worker's own store; the job waits for the next attempt
                log.exception("job %s: the delivery worker did not take the reply", job.job_id)
                return
            try:
                item_id = await self._find_item(job.job_id) if before > 0 else None
                if item_id is None:
                    item_id = await publish_job(
                        self.rest,
                        job_id=job.job_id,
                        kassa=job.kassa,
                        task=job.task,
                        source=self.source,
                        reply={"targets": [job.target]},
                    )
                else:
                    await self._ring(job)
            except (BitrixError, OSError) as error:
                log.warning("job %s not in KASSAJOB yet (%s); will retry", job.job_id, error)
                if before == 0:
                    delayed = OutMessage(
                        message_key(self.messenger, job.job_id, "delayed"),
                        job.chat_id,
                        texts.PUBLISH_DELAYED,
                    )
                    self.store.queue(self.messenger, [delayed])
            else:
                log.info("job %s in KASSAJOB item %s for %s", job.job_id, item_id, job.kassa)
                self._published(job, int(item_id))
        async with self._lock(job.chat_id):
            with contextlib.suppress(Exception):
                await self._flush(job.chat_id)

    async def _find_item(self, job_id: str) -> int | None:
        found = await self.rest.result(
            "entity.item.get",
            {"ENTITY": JOB_ENTITY, "FILTER": {"NAME": job_id}, "SORT": {"ID": "ASC"}},
        )
        for item in found or []:
            if isinstance(item, dict) and str(item.get("NAME")) == job_id:
                return int(str(item["ID"]))
        return None

    async def _ring(self, job: ChatJob) -> None:
        """The doorbell publish_job rings after adding the item; reconciliation finds the
        job anyway, so a failed ring is only logged."""
        try:
            await self.rest.result(
                "pull.application.event.add",
                {"COMMAND": "kassa.job", "PARAMS": {"job": job.job_id, "kassa": job.kassa}},
                priority=Priority.STATUS,
            )
        except BitrixError as error:
            log.info("doorbell for job %s not rung: %s", job.job_id, error)

    def _published(self, job: ChatJob, item_id: int) -> None:
        body = self.store.conversation(self.messenger, job.chat_id)
        conversation = None
        if body:
            conv = Conversation.loads(body)
            if conv.state is State.PRINTING and conv.printing_job == job.job_id:
                conv.state = State.IDLE
                conversation = (self.messenger, job.chat_id, conv.dumps())
        sent = OutMessage(
            message_key(self.messenger, job.job_id, "sent"),
            job.chat_id,
            texts.SENT_TO_KASSA.format(total=format_money(Decimal(job.total)), kassa=job.kassa),
        )
        if conversation is None:
            self.store.job_published(job.job_id, item_id)
            self.store.queue(self.messenger, [sent])
        else:
            self.store.job_published(
                job.job_id, item_id, conversation=conversation, messages=[sent]
            )

    # --- sending ---------------------------------------------------------------------------

    async def _flush(self, chat_id: str) -> None:
        for message in self.store.unsent(self.messenger, chat_id):
            message_id = await self.transport.send_text(
                message.chat_id, message.text, keyboard=message.keyboard, key=message.key
            )
            self.store.mark_sent(message.key, str(message_id))
