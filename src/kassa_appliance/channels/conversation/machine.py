"""The state machine of one chat: what an update does to the conversation and what the bot
answers. No I/O of its own: Bitrix24 reads go through :class:`Environment`, sends and
persistence are the service's (service.py).

States (draft.State): idle → composing → payment → contact → place → kassa → preview →
printing. A question is asked only when its answer is missing (contact only when the
settings ask for it, place only with ``ask_place``, kassa only when there are several), so
[Пробить] on a draft walks the missing questions and ends on the preview; [Пробить] on the
preview (its action carries the draft's revision) prints. [Изменить] and [Отмена] are
under every question.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from kassa_appliance.channels.conversation import texts
from kassa_appliance.channels.conversation.access import Cashier
from kassa_appliance.channels.conversation.commands import command_of
from kassa_appliance.channels.conversation.contact import ContactError, read_contact
from kassa_appliance.channels.conversation.draft import Conversation, Draft, Payment, State
from kassa_appliance.channels.conversation.positions import (
    PositionError,
    format_money,
    parse_positions,
)
from kassa_appliance.channels.conversation.settings import ConversationSettings
from kassa_appliance.channels.conversation.transport import Button, Incoming, Keyboard
from kassa_appliance.channels.conversation.views import draft_lines, preview_text
from kassa_appliance.fiscal.receipt_limits import MAX_ADDRESS_LENGTH
from kassa_appliance.setting_checks import first_control_character

__all__ = ["Environment", "Machine", "Reply", "Step"]

GO = "go"
EDIT = "edit"
CANCEL = "cancel"
CONTROLS: tuple[Button, ...] = (
    Button(texts.BUTTON_PRINT, GO),
    Button(texts.BUTTON_EDIT, EDIT),
    Button(texts.BUTTON_CANCEL, CANCEL),
)
QUESTION_STATES = (State.PAYMENT, State.CONTACT, State.PLACE, State.KASSA)


@dataclass(frozen=True, slots=True)
class Reply:
    text: str
    keyboard: Keyboard = ()


@dataclass
class Step:
    replies: list[Reply] = field(default_factory=list)
    notice: str | None = None
    """A short answer to the button press (MAX shows it as a toast)."""
    print_now: bool = False
    """[Пробить] on the current preview: the service creates the job."""


class Environment(Protocol):
    async def kassas(self) -> list[str]:
        """The kassas a receipt may go to (settings, else every KASSADEV item)."""
        ...

    async def command(self, name: str, incoming: Incoming, conversation: Conversation) -> Step:
        """Run a command (help, kassas, recent receipts, return pick)."""
        ...

    def original(self, job_id: str, user_id: str) -> Draft | None:
        """The draft of a receipt this user printed from a chat, for its return."""
        ...


class Machine:
    def __init__(self, settings: ConversationSettings, env: Environment) -> None:
        self.settings = settings
        self.env = env

    async def step(self, conv: Conversation, incoming: Incoming, cashier: Cashier) -> Step:
        if incoming.action is None:
            command = command_of(incoming.text)
            if command is not None:
                return await self._command(conv, command, incoming)
            return await self._text(conv, incoming.text, cashier)
        return await self._action(conv, incoming.action, incoming, cashier)

    async def _command(self, conv: Conversation, command: str, incoming: Incoming) -> Step:
        if command == "cancel":
            return self._cancel(conv)
        return await self.env.command(command, incoming, conv)

    # --- text ----------------------------------------------------------------------------

    async def _text(self, conv: Conversation, text: str, cashier: Cashier) -> Step:
        state = conv.state
        if state is State.PRINTING:
            return Step([Reply(texts.SENDING)])
        if state is State.CONTACT:
            try:
                conv.draft.contact = read_contact(text)
            except ContactError as error:
                return Step([Reply(str(error), self._keyboard(conv))])
            conv.draft.contact_done = True
            conv.changed()
            return await self._advance(conv, cashier)
        if state is State.PLACE:
            place = " ".join(text.split())
            if not place or len(place) > MAX_ADDRESS_LENGTH or first_control_character(place):
                return Step([Reply(texts.BAD_PLACE.format(limit=MAX_ADDRESS_LENGTH))])
            conv.draft.place, conv.draft.place_done = place, True
            conv.changed()
            return await self._advance(conv, cashier)
        if state is State.PAYMENT:
            choice = _payment_word(text)
            if choice is not None:
                conv.draft.payment = choice
                conv.changed()
                return await self._advance(conv, cashier)
        try:
            positions = parse_positions(text)
        except PositionError as error:
            hint = texts.NOT_READ.format(error=error)
            if state is State.PAYMENT:
                hint += "\n" + texts.PAYMENT_WORDS_HINT
            return Step([Reply(hint, self._keyboard(conv))])
        if state is State.REPLACE and conv.replace_index is not None:
            if len(positions) != 1:
                return Step([Reply(texts.REPLACE_ONE, self._keyboard(conv))])
            index = conv.replace_index
            if index < len(conv.draft.positions):
                conv.draft.positions[index] = positions[0]
            conv.replace_index = None
            conv.changed()
            return await self._after_edit(conv, cashier)
        if state is State.IDLE:
            conv.reset()
        conv.draft.positions.extend(positions)
        conv.state = State.COMPOSING
        conv.changed()
        return Step([self._draft_reply(conv)])

    # --- buttons ---------------------------------------------------------------------------

    async def _action(
        self, conv: Conversation, action: str, incoming: Incoming, cashier: Cashier
    ) -> Step:
        head, _, rest = action.partition(":")
        if head == "cmd":
            return await self._command(conv, rest, incoming)
        if head == GO:
            return await self._go(conv, rest, cashier)
        if head == CANCEL:
            return self._cancel(conv)
        if conv.state is State.PRINTING:
            return Step([Reply(texts.SENDING)], notice=texts.SENDING)
        if head == "ret":
            return await self._return(conv, rest, incoming, cashier)
        if conv.state is State.IDLE or not conv.draft.positions:
            return Step([Reply(texts.NOTHING_TO_EDIT)], notice=texts.NOTHING_TO_EDIT)
        if head == EDIT:
            conv.state = State.EDIT
            return Step([self._edit_menu(conv)])
        if head == "pay" and rest in ("cash", "card"):
            conv.draft.payment = "cash" if rest == "cash" else "card"
        elif head == "contact" and rest == "none":
            conv.draft.contact, conv.draft.contact_done = None, True
        elif head == "place" and rest == "default" and self.settings.default_place:
            conv.draft.place, conv.draft.place_done = self.settings.default_place, True
        elif head == "kassa" and rest.isdigit() and int(rest) < len(conv.choices):
            conv.draft.kassa = conv.choices[int(rest)]
        elif head in ("rm", "re"):
            return await self._edit_position(conv, head, rest, cashier)
        elif head == "ed":
            return await self._edit_field(conv, rest, cashier)
        else:
            return Step([self._current(conv)], notice=texts.STALE_BUTTON)
        conv.changed()
        return await self._advance(conv, cashier)

    async def _go(self, conv: Conversation, revision: str, cashier: Cashier) -> Step:
        if revision:
            if conv.printed_revision is not None and revision == str(conv.printed_revision):
                note = texts.ALREADY_SENT.format(kassa=conv.printed_kassa or "—")
                return Step([Reply(note)], notice=note)
            if conv.state is State.PREVIEW and revision == str(conv.revision):
                conv.state = State.PRINTING
                return Step(notice=texts.SENDING, print_now=True)
            stale = revision != str(conv.revision) or conv.state is not State.PREVIEW
            if stale and conv.draft.positions and conv.state not in (State.IDLE, State.PRINTING):
                conv.confirmed = True
                step = await self._advance(conv, cashier)
                step.replies.insert(0, Reply(texts.PREVIEW_CHANGED))
                return step
        if conv.state is State.PRINTING:
            return Step([Reply(texts.SENDING)], notice=texts.SENDING)
        if conv.state is State.IDLE or not conv.draft.positions:
            return Step([Reply(texts.ASK_POSITIONS)], notice=texts.ASK_POSITIONS)
        if conv.state is State.PREVIEW:
            return Step([self._current_preview(conv, cashier)], notice=texts.PRINT_ON_PREVIEW)
        if conv.state in QUESTION_STATES:
            return Step([self._question(conv)], notice=texts.ANSWER_FIRST)
        conv.confirmed = True
        return await self._advance(conv, cashier)

    def _cancel(self, conv: Conversation) -> Step:
        if conv.state is State.PRINTING:
            return Step([Reply(texts.CANNOT_CANCEL_SENT)], notice=texts.CANNOT_CANCEL_SENT)
        if conv.state is State.IDLE:
            return Step([Reply(texts.NOTHING_TO_CANCEL)], notice=texts.NOTHING_TO_CANCEL)
        conv.reset()
        return Step([Reply(texts.CANCELLED)], notice=texts.CANCELLED)

    async def _return(
        self, conv: Conversation, index: str, incoming: Incoming, cashier: Cashier
    ) -> Step:
        if not index.isdigit() or int(index) >= len(conv.return_choices):
            return Step([Reply(texts.RETURN_UNKNOWN)], notice=texts.STALE_BUTTON)
        job_id = conv.return_choices[int(index)]
        original = self.env.original(job_id, incoming.user_id)
        if original is None or original.kind != "sell":
            return Step([Reply(texts.RETURN_UNKNOWN)], notice=texts.RETURN_UNKNOWN)
        conv.reset()
        original.kind, original.return_of = "sellReturn", job_id
        conv.draft = original
        conv.confirmed = True
        conv.changed()
        return await self._advance(conv, cashier)

    # --- editing ---------------------------------------------------------------------------

    def _edit_menu(self, conv: Conversation) -> Reply:
        rows: list[tuple[Button, ...]] = []
        for number, position in enumerate(conv.draft.positions, 1):
            name = position.name[:24]
            suffix = f"{number - 1}:{conv.revision}"
            rows.append(
                (
                    Button(texts.BUTTON_REMOVE.format(number=number, name=name), f"rm:{suffix}"),
                    Button(texts.BUTTON_REPLACE.format(number=number, name=name), f"re:{suffix}"),
                )
            )
        rows.append(
            (
                Button(texts.BUTTON_EDIT_PAYMENT, "ed:pay"),
                Button(texts.BUTTON_EDIT_CONTACT, "ed:contact"),
                Button(texts.BUTTON_EDIT_PLACE, "ed:place"),
                Button(texts.BUTTON_EDIT_KASSA, "ed:kassa"),
            )
        )
        rows.append((Button(texts.BUTTON_BACK, "ed:back"), Button(texts.BUTTON_CANCEL, CANCEL)))
        return Reply(texts.EDIT_MENU.format(lines=draft_lines(conv.draft)), tuple(rows))

    async def _edit_position(
        self, conv: Conversation, head: str, rest: str, cashier: Cashier
    ) -> Step:
        index_text, _, revision = rest.partition(":")
        positions = conv.draft.positions
        if revision != str(conv.revision) or not index_text.isdigit():
            return Step([self._current(conv)], notice=texts.STALE_BUTTON)
        index = int(index_text)
        if index >= len(positions):
            return Step([self._current(conv)], notice=texts.STALE_BUTTON)
        position = positions[index]
        if head == "re":
            conv.state, conv.replace_index = State.REPLACE, index
            return Step(
                [
                    Reply(
                        texts.ASK_REPLACEMENT.format(number=index + 1, name=position.name),
                        (CONTROLS,),
                    )
                ]
            )
        del positions[index]
        conv.changed()
        removed = Reply(texts.REMOVED.format(number=index + 1, name=position.name))
        if not positions:
            conv.state = State.COMPOSING
            return Step([removed, Reply(texts.LAST_REMOVED + "\n" + texts.ASK_POSITIONS)])
        step = await self._after_edit(conv, cashier)
        step.replies.insert(0, removed)
        return step

    async def _edit_field(self, conv: Conversation, field_name: str, cashier: Cashier) -> Step:
        draft = conv.draft
        if field_name == "pay":
            draft.payment = None
        elif field_name == "contact":
            draft.contact, draft.contact_done = None, False
        elif field_name == "place":
            draft.place, draft.place_done = None, False
        elif field_name == "kassa":
            draft.kassa = None
        elif field_name != "back":
            return Step([self._current(conv)], notice=texts.STALE_BUTTON)
        conv.changed()
        conv.confirmed = conv.confirmed or field_name != "back"
        return await self._after_edit(conv, cashier)

    async def _after_edit(self, conv: Conversation, cashier: Cashier) -> Step:
        if conv.confirmed:
            return await self._advance(conv, cashier)
        conv.state = State.COMPOSING
        return Step([self._draft_reply(conv)])

    # --- the questions, in order -------------------------------------------------------------

    async def _advance(self, conv: Conversation, cashier: Cashier) -> Step:
        draft, settings = conv.draft, self.settings
        if not draft.positions:
            conv.state = State.COMPOSING
            return Step([Reply(texts.ASK_POSITIONS)])
        if draft.payment is None:
            conv.state = State.PAYMENT
        elif settings.electronic_receipt == "ask" and not draft.contact_done:
            conv.state = State.CONTACT
        elif not draft.place_done and (settings.ask_place or settings.default_place):
            if settings.ask_place:
                conv.state = State.PLACE
            else:
                draft.place, draft.place_done = settings.default_place, True
                return await self._advance(conv, cashier)
        else:
            kassas = await self.env.kassas()
            if draft.kassa is not None and draft.kassa not in kassas:
                draft.kassa = None
            if draft.kassa is None and len(kassas) == 1:
                draft.kassa = kassas[0]
            if not kassas:
                conv.state = State.COMPOSING
                return Step([Reply(texts.NO_KASSA, self._keyboard(conv))])
            if draft.kassa is None:
                conv.state, conv.choices = State.KASSA, list(kassas)
            else:
                conv.state = State.PREVIEW
                return Step([self._current_preview(conv, cashier)])
        return Step([self._question(conv)])

    def _question(self, conv: Conversation) -> Reply:
        controls = self._keyboard(conv)
        if conv.state is State.PAYMENT:
            choice = (Button(texts.BUTTON_CASH, "pay:cash"), Button(texts.BUTTON_CARD, "pay:card"))
            return Reply(texts.ASK_PAYMENT, (choice, *controls))
        if conv.state is State.CONTACT:
            skip = (Button(texts.BUTTON_NO_CONTACT, "contact:none"),)
            return Reply(texts.ASK_CONTACT, (skip, *controls))
        if conv.state is State.PLACE:
            default = self.settings.default_place
            if default:
                offer = (Button(default[:40], "place:default"),)
                ask = texts.ASK_PLACE + texts.ASK_PLACE_DEFAULT.format(place=default)
                return Reply(ask, (offer, *controls))
            return Reply(texts.ASK_PLACE, controls)
        rows = tuple((Button(k[:40], f"kassa:{i}"),) for i, k in enumerate(conv.choices))
        return Reply(texts.ASK_KASSA, (*rows, *controls))

    def _keyboard(self, conv: Conversation) -> Keyboard:
        if conv.state is State.PREVIEW:
            return ((Button(texts.BUTTON_PRINT, f"{GO}:{conv.revision}"), *CONTROLS[1:]),)
        return (CONTROLS,)

    def _draft_reply(self, conv: Conversation) -> Reply:
        draft = conv.draft
        text = texts.DRAFT.format(lines=draft_lines(draft), total=format_money(draft.total))
        return Reply(text, self._keyboard(conv))

    def _current(self, conv: Conversation) -> Reply:
        if conv.state in QUESTION_STATES:
            return self._question(conv)
        if conv.state is State.EDIT:
            return self._edit_menu(conv)
        if conv.draft.positions:
            return self._draft_reply(conv)
        return Reply(texts.ASK_POSITIONS)

    def _current_preview(self, conv: Conversation, cashier: Cashier) -> Reply:
        return Reply(preview_text(conv.draft, cashier), self._keyboard(conv))


def _payment_word(text: str) -> Payment | None:
    word = text.strip().lower()
    if word.startswith("нал"):
        return "cash"
    if word.startswith(("карт", "безнал", "qr", "сбп")):
        return "card"
    return None
