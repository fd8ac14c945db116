"""The conversation engine's parts on their own: the allow-list and its key format, the
settings, the Atol task a draft becomes (checked by the fiscal core's parse_task), the
rendered reply (QR decoded by zbar) and the refusals in Russian, the store."""

from __future__ import annotations

import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from kassa_appliance.channels.conversation.access import (
    Cashier,
    cashier_for,
    describe_cashiers,
    parse_cashiers,
)
from kassa_appliance.channels.conversation.commands import command_of
from kassa_appliance.channels.conversation.draft import Conversation, Draft, State
from kassa_appliance.channels.conversation.positions import ReadPosition
from kassa_appliance.channels.conversation.receipt_task import TaskNotPrintable, build_task
from kassa_appliance.channels.conversation.refusals import explain_refusal
from kassa_appliance.channels.conversation.render import check_url_for, qr_png, render_outcome
from kassa_appliance.channels.conversation.settings import ConversationSettings
from kassa_appliance.channels.conversation.store import ConversationStore, OutMessage
from kassa_appliance.channels.conversation.transport import Button, Incoming
from kassa_appliance.channels.delivery.protocol import Outcome
from kassa_appliance.fiscal.receipt import ReceiptTask, parse_task
from kassa_appliance.registers.atol_errors import ATOL_ERRORS

CASHIER = Cashier(name="Мастер Иванов И.И.", inn="500100732259")


def incoming(user: str, messenger: str = "b24", departments: tuple[int, ...] = ()) -> Incoming:
    return Incoming(messenger, "c", user, "u1", text="x", department_ids=departments)


# --- allow-list ---------------------------------------------------------------------------


def test_the_cashiers_key_maps_users_and_departments_to_receipt_cashiers() -> None:
    cashiers = parse_cashiers(
        "17=Мастер Иванов И.И.:500100732259; d5=Мастер Петров П.П.:7707083893,18=Сидорова А."
    )
    assert cashiers["17"] == CASHIER
    assert cashiers["d5"] == Cashier(name="Мастер Петров П.П.", inn="7707083893")
    assert cashiers["18"].inn is None
    assert cashier_for(cashiers, incoming("17", departments=(5,))) == CASHIER
    assert cashier_for(cashiers, incoming("40", departments=(3, 5))) == cashiers["d5"]
    assert cashier_for(cashiers, incoming("40", departments=(3,))) is None
    assert cashier_for(cashiers, incoming("40", "max", departments=(5,))) is None
    assert parse_cashiers(describe_cashiers(cashiers)) == cashiers


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Иванов", "expected who=name[:INN]"),
        ("x7=Иванов", "expected who=name[:INN]"),
        ("17=", "name is empty"),
        ("17=Иванов:123", "is not an INN"),
        ("17=Иванов:500100732250", "check digit"),
        ("17=Иванов,17=Петров", "listed twice"),
        ("17=" + "И" * 65, "at most 64"),
    ],
)
def test_a_bad_cashiers_key_names_the_entry_and_what_is_expected(text: str, problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_cashiers(text)
    assert problem in str(caught.value) and "entry" in str(caught.value)


def test_the_settings_take_the_key_text_or_an_object_and_check_receipt_fields() -> None:
    from_text = ConversationSettings.model_validate({"cashiers": "17=Иванов И."})
    from_object = ConversationSettings.model_validate({"cashiers": {"17": {"name": "Иванов И."}}})
    assert from_text == from_object
    for bad in ({"vat": "vat18"}, {"taxation_type": "envd"}, {"payment_object": "thing"}):
        with pytest.raises(ValidationError):
            ConversationSettings.model_validate(bad)
    with pytest.raises(ValidationError, match="expected a user id"):
        ConversationSettings.model_validate({"cashiers": {"someone": {"name": "Иванов"}}})


# --- the task -----------------------------------------------------------------------------


def test_a_draft_becomes_a_sell_task_the_fiscal_core_accepts() -> None:
    draft = Draft(
        positions=[
            ReadPosition("Замена смесителя", Decimal(1), Decimal("1500.00")),
            ReadPosition("Кабель", Decimal("2.5"), Decimal("120.00"), "meter"),
        ],
        payment="card",
        contact="ivanov@example.ru",
        place="г. Москва, ул. Ленина, д. 5",
    )
    config = ConversationSettings(
        vat="vat22", taxation_type="osn", payments_address="г. Москва, ул. Офисная, 1"
    )
    task = parse_task(build_task(draft, CASHIER, config))
    assert isinstance(task, ReceiptTask) and task.type == "sell"
    assert task.total == Decimal("1800.00") and task.payments[0].type == "electronically"
    assert task.paymentsPlace == "г. Москва, ул. Ленина, д. 5"
    assert task.paymentsAddress == "г. Москва, ул. Офисная, 1"
    assert task.positions[1].measurementUnit == "meter"
    assert task.positions[0].tax.type == "vat22" and task.taxationType == "osn"
    assert task.electronically is True


def test_a_draft_without_payment_or_with_a_bad_contact_is_not_printable() -> None:
    draft = Draft(positions=[ReadPosition("Кран", Decimal(1), Decimal(100))])
    with pytest.raises(TaskNotPrintable, match="оплата"):
        build_task(draft, CASHIER, ConversationSettings())
    draft.payment, draft.contact = "cash", "not a contact"
    with pytest.raises(TaskNotPrintable, match=r"clientInfo\.emailOrPhone"):
        build_task(draft, CASHIER, ConversationSettings())


drafts = st.builds(
    Draft,
    positions=st.lists(
        st.builds(
            ReadPosition,
            st.text("абвгдКРАН ", min_size=1, max_size=20).map(str.strip).filter(bool),
            st.decimals(Decimal("0.001"), Decimal("999"), places=3),
            st.decimals(Decimal("0.01"), Decimal("99999.99"), places=2),
            st.sampled_from(["piece", "hour", "meter"]),
        ),
        min_size=1,
        max_size=8,
    ),
    kind=st.sampled_from(["sell", "sellReturn"]),
    payment=st.sampled_from(["cash", "card"]),
    contact=st.sampled_from([None, "+79161234567", "a@b.ru"]),
    place=st.sampled_from([None, "ул. Ленина, 5"]),
)


@settings(max_examples=200, deadline=None)
@given(drafts)
def test_every_draft_the_chat_can_build_passes_the_fiscal_core(draft: Draft) -> None:
    task = parse_task(build_task(draft, CASHIER, ConversationSettings()))
    assert isinstance(task, ReceiptTask) and task.type == draft.kind
    assert task.total == draft.total == sum(p.amount for p in task.positions)


# --- rendering ------------------------------------------------------------------------------


def zbar(png: bytes, path: Path) -> str:
    path.write_bytes(png)
    answer = subprocess.run(
        ["zbarimg", "--quiet", "--raw", str(path)], capture_output=True, text=True, check=True
    )
    return answer.stdout.rstrip("\n")


@pytest.mark.parametrize(
    "qr",
    [
        "t=20260101T1200&s=1850.00&fn=9999078900000961&i=71&fp=1494325660&n=1",
        "t=20260101T120059&s=0.01&fn=7281440500467899&i=1&fp=3754267781&n=2",
    ],
)
def test_the_qr_image_is_exactly_the_qr_string(qr: str, tmp_path: Path) -> None:
    assert zbar(qr_png(qr), tmp_path / "qr.png") == qr


def test_a_done_outcome_renders_the_fiscal_data_and_the_check_link(tmp_path: Path) -> None:
    qr = "t=20260101T1200&s=1850.00&fn=9999078900000961&i=71&fp=1494325660&n=1"
    params = {
        "total": 1850.0,
        "fiscalDocumentNumber": 71,
        "fiscalDocumentSign": "1494325660",
        "fnNumber": "9999078900000961",
        "fiscalDocumentDateTime": "2026-01-01T12:00:00+03:00",
        "fiscalReceiptNumber": 3,
        "shiftNumber": 2,
    }
    reply = render_outcome(
        Outcome("j", "done", {"type": "sell"}, {"fiscalParams": params}, qr, kassa="office")
    )
    for part in ("ФД № 71, ФП 1494325660", "ФН 9999078900000961", "01.01.2026 12:00", "смена 2"):
        assert part in reply.text
    assert reply.check_url == check_url_for(qr)
    assert reply.check_url is not None and "fn=9999078900000961&fd=71&fp=1494325660" in (
        reply.check_url
    )
    assert reply.png is not None and zbar(reply.png, tmp_path / "qr.png") == qr
    # Without the register's QR string it is built from the fiscal data, the same way.
    rebuilt = render_outcome(Outcome("j", "done", {"type": "sell"}, {"fiscalParams": params}))
    assert rebuilt.png is not None and zbar(rebuilt.png, tmp_path / "qr2.png") == qr


@pytest.mark.parametrize("code", sorted(ATOL_ERRORS))
def test_every_atol_code_is_explained_in_russian(code: int) -> None:
    text = explain_refusal(f"atol-{code}", "whatever the driver said")
    assert text and not any(
        "a" <= c <= "z" for c in text.replace("taxation-type", "").replace("vat", "")
    )


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("invalid-task", "invalid task: items[1].name: is empty", "название позиции 2"),
        ("invalid-task", "invalid task: operator.vatin: bad", "ИНН кассира"),
        ("internal-error", "boom", "сбой"),
        ("cancelled", None, "отменили"),
        ("creator-not-allowed", "x", "bitrix.allowed-users"),
        ("something-new", "detail", "администратору"),
    ],
)
def test_refusals_say_what_to_change(code: str, message: str | None, expected: str) -> None:
    assert expected in explain_refusal(code, message)
    rendered = render_outcome(
        Outcome("j", "failed", {"type": "sell", "total": 10}, None, None, code, message)
    )
    assert rendered.png is None and rendered.check_url is None and expected in rendered.text


# --- commands and the store ----------------------------------------------------------------


def test_commands_with_or_without_slash() -> None:
    assert command_of("/help") == command_of("помощь") == command_of("/start@kassa_bot") == "help"
    assert command_of("/кассы") == "kassas" and command_of("Чеки") == "last"
    assert command_of("возврат") == "return" and command_of("/отмена") == "cancel"
    assert command_of("Кран 350") is None and command_of("") is None


def test_the_store_keeps_state_updates_and_the_outbox_across_reopening(tmp_path: Path) -> None:
    store = ConversationStore.open(tmp_path)
    conv = Conversation(
        state=State.CONTACT,
        draft=Draft(
            positions=[ReadPosition("Кран", Decimal("1.5"), Decimal("99.90"), "hour")],
            payment="cash",
        ),
        revision=4,
    )
    message = OutMessage("k1", "c", "текст", ((Button("Пробить", "go:4"),),))
    store.commit(
        messenger="max", chat_id="c", update_id="u1", conversation=conv.dumps(), messages=[message]
    )
    store.close()
    store = ConversationStore.open(tmp_path)
    assert store.seen("max", "u1") and not store.seen("b24", "u1")
    body = store.conversation("max", "c")
    assert body is not None and Conversation.loads(body) == conv
    assert store.unsent("max") == [message]
    store.mark_sent("k1", "m1")
    assert store.unsent("max") == [] and store.sent_id("k1") == "m1"
    mode = store._db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    store.close()
