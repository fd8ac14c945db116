"""Bot events → conversation updates: what the poller hands the engine, what it skips, and
that no event body — however malformed — makes the parser raise (hypothesis)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kassa_appliance.channels.b24bot.events import incoming_of, keyboard_fields, message_ids
from kassa_appliance.channels.conversation.transport import Button

BOT = 1000


def event(kind: str, dialog: str = "2", text: str = "Кран 2 х 350", **extra: Any) -> dict[str, Any]:
    return {
        "eventId": 1001,
        "type": kind,
        "date": "2026-12-01T10:00:00+00:00",
        "data": {
            "bot": {"id": BOT},
            "message": {"id": 77, "text": text, "isSystem": False, "authorId": 2},
            "chat": {"id": 5, "dialogId": dialog},
            "user": {"id": 2, "name": "Иван Петров", "departments": [1, 7], "bot": False},
            **extra,
        },
    }


def test_a_private_message_is_an_update_with_the_users_departments() -> None:
    incoming = incoming_of(event("ONIMBOTV2MESSAGEADD"), BOT)
    assert incoming is not None
    assert (incoming.messenger, incoming.chat_id, incoming.user_id) == ("b24", "2", "2")
    assert (incoming.update_id, incoming.text, incoming.action) == ("m77", "Кран 2 х 350", None)
    assert incoming.department_ids == (1, 7) and incoming.user_name == "Иван Петров"
    assert message_ids(event("ONIMBOTV2MESSAGEADD")) == ("2", 77)


def test_in_a_group_chat_only_a_mention_of_the_bot_counts() -> None:
    assert incoming_of(event("ONIMBOTV2MESSAGEADD", dialog="chat5"), BOT) is None
    other = event("ONIMBOTV2MESSAGEADD", dialog="chat5", text="[USER=3]Оля[/USER] привет")
    assert incoming_of(other, BOT) is None
    mention = event("ONIMBOTV2MESSAGEADD", dialog="chat5", text="[USER=1000]Касса[/USER] помощь")
    incoming = incoming_of(mention, BOT)
    assert incoming is not None and incoming.text == "помощь" and incoming.chat_id == "chat5"


def test_a_button_press_carries_its_action_and_repeats_are_one_update() -> None:
    command = {"id": 3, "command": "/kassa", "params": "confirm:d1", "context": "keyboard"}
    incoming = incoming_of(event("ONIMBOTV2COMMANDADD", command=command), BOT)
    assert incoming is not None
    assert (incoming.action, incoming.update_id, incoming.callback_id) == (
        "confirm:d1",
        "c77:confirm:d1",
        "3:77",
    )
    foreign = {**command, "command": "/help"}
    assert incoming_of(event("ONIMBOTV2COMMANDADD", command=foreign), BOT) is None


def test_system_own_and_other_events_are_skipped() -> None:
    system = event("ONIMBOTV2MESSAGEADD")
    system["data"]["message"]["isSystem"] = True
    own = event("ONIMBOTV2MESSAGEADD")
    own["data"]["user"] = {"id": BOT, "bot": True}
    for skipped in (system, own, event("ONIMBOTV2JOINCHAT"), event("ONIMBOTV2REACTIONCHANGE")):
        assert incoming_of(skipped, BOT) is None


def test_buttons_become_a_keyboard_with_rows() -> None:
    keyboard = (
        (Button("Пробить", "confirm"), Button("Изменить", "edit")),
        (),
        (Button("Отмена", "cancel"),),
    )
    fields = keyboard_fields(BOT, keyboard)
    assert fields is not None and fields["BOT_ID"] == BOT
    assert [b.get("COMMAND_PARAMS", b.get("TYPE")) for b in fields["BUTTONS"]] == [
        "confirm",
        "edit",
        "NEWLINE",
        "cancel",
    ]
    assert all(b.get("COMMAND") == "kassa" for b in fields["BUTTONS"] if "TEXT" in b)
    assert keyboard_fields(BOT, ()) is None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)
PARTS = st.fixed_dictionaries(
    {},
    optional={
        "message": JSON | st.fixed_dictionaries({"id": JSON, "text": JSON, "isSystem": JSON}),
        "chat": JSON | st.fixed_dictionaries({"dialogId": JSON}),
        "user": JSON | st.fixed_dictionaries({"id": JSON, "departments": JSON, "bot": JSON}),
        "command": JSON | st.fixed_dictionaries({"command": JSON, "params": JSON, "id": JSON}),
    },
)


@settings(max_examples=400, deadline=None)
@given(
    kind=st.sampled_from(["ONIMBOTV2MESSAGEADD", "ONIMBOTV2COMMANDADD", "X"]) | JSON,
    data=PARTS | JSON,
)
def test_no_event_body_makes_the_parser_raise(kind: Any, data: Any) -> None:
    body = {"eventId": 1, "type": kind, "data": data}
    incoming = incoming_of(body, BOT)
    message_ids(body)
    if incoming is not None:
        assert incoming.update_id and incoming.chat_id and incoming.user_id
