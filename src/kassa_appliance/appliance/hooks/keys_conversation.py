"""``snap set`` keys of the receipt settings both chat bots inherit.

:class:`~kassa_appliance.channels.conversation.settings.ConversationSettings` is the base of
the ``b24bot`` and ``maxbot`` sections, so the same keys exist under both groups::

    snap set kassa-appliance b24bot.kassas=office-1,office-2 b24bot.vat=vat22 \
        b24bot.ask-place=false b24bot.default-place='г. Москва, ул. Ленина, д. 5'

:func:`conversation_keys` gives one group's keys; ``keys_b24bot.KEYS`` and
``keys_maxbot.KEYS`` take them with one line each. ``cashiers`` is not here: each bot
has its own rule for who may be named (MAX has no departments). The model's validators
run again when ``config.json`` is loaded; the parse functions here say, in the
integrator's words, which value is wrong and what is expected.
"""

from __future__ import annotations

from kassa_appliance.appliance.config import check_kassa_id
from kassa_appliance.appliance.hooks.snap_values import (
    BadValue,
    Parser,
    SnapKey,
    _bool,
    _is_text_or_whole,
)
from kassa_appliance.fiscal.receipt_enums import (
    OBSOLETE_TAX_TYPES,
    OBSOLETE_TAXATION_TYPES,
    PAYMENT_OBJECTS,
    TAX_TYPES,
    TAXATION_TYPES,
)
from kassa_appliance.fiscal.receipt_limits import MAX_ADDRESS_LENGTH
from kassa_appliance.setting_checks import first_control_character

__all__ = ["MAX_KASSAS", "conversation_keys"]

MAX_KASSAS = 20
"""Kassas one bot may offer: more would not fit the buttons of one question."""


def parse_kassas(raw: object) -> object:
    """``office-1,office-2`` (text), ``7`` (a number) or ``["office-1", "office-2"]``."""
    expected = "expected kassa ids separated by commas, e.g. office-1,office-2"
    if isinstance(raw, list) and all(_is_text_or_whole(item) for item in raw):
        items = [str(item) for item in raw]
    elif _is_text_or_whole(raw):
        items = str(raw).split(",")
    else:
        raise BadValue(f"is not allowed; {expected}")
    kassas: list[str] = []
    for item in (part.strip() for part in items):
        if not item:
            raise BadValue(f"has an empty kassa id; {expected}")
        try:
            check_kassa_id(item)
        except ValueError:
            raise BadValue(
                f"names {item[:40]!r}, which is not a kassa id; expected 1-64 letters, digits, "
                "dashes or underscores starting with a letter or digit (kassa.id of a kassa)"
            ) from None
        if item not in kassas:
            kassas.append(item)
    if len(kassas) > MAX_KASSAS:
        raise BadValue(f"names {len(kassas)} kassas; expected at most {MAX_KASSAS}")
    return kassas


def parse_taxation_type(raw: object) -> object:
    if isinstance(raw, str) and raw in TAXATION_TYPES:
        return raw
    if isinstance(raw, str) and raw in OBSOLETE_TAXATION_TYPES:
        raise BadValue(
            f"is no longer a taxation system ({OBSOLETE_TAXATION_TYPES[raw]}); "
            f"expected one of {', '.join(TAXATION_TYPES)}"
        )
    raise BadValue(
        "is not a taxation system (taxationType, tag 1055); "
        f"expected one of {', '.join(TAXATION_TYPES)}"
    )


def parse_vat(raw: object) -> object:
    if isinstance(raw, str) and raw in TAX_TYPES:
        return raw
    if isinstance(raw, str) and raw in OBSOLETE_TAX_TYPES:
        raise BadValue(
            f"is no longer a VAT rate ({OBSOLETE_TAX_TYPES[raw]}); "
            f"expected one of {', '.join(TAX_TYPES)}"
        )
    raise BadValue(
        f"is not a VAT rate (tax.type of each position); expected one of {', '.join(TAX_TYPES)}"
    )


def parse_payment_object(raw: object) -> object:
    if isinstance(raw, str) and raw in PAYMENT_OBJECTS:
        return raw
    raise BadValue(
        "is not a payment object (paymentObject, tag 1212); expected an Atol name, "
        f"e.g. service or job, one of {', '.join(PAYMENT_OBJECTS)}"
    )


def _address(what: str, example: str) -> Parser:
    def parse(raw: object) -> object:
        if not isinstance(raw, str):
            raise BadValue(f"is not allowed; expected {what} as text, e.g. {example}")
        value = raw.strip()
        if not value:
            raise BadValue(f"is blank; expected {what}, e.g. {example} (or unset the key)")
        if len(value) > MAX_ADDRESS_LENGTH:
            raise BadValue(
                f"has {len(value)} characters; expected {what} of at most "
                f"{MAX_ADDRESS_LENGTH} characters"
            )
        if first_control_character(value) is not None:
            raise BadValue(f"holds a control character; expected {what} on one line of text")
        return value

    return parse


parse_payments_address = _address(
    "the address of settlement (paymentsAddress, tag 1009)", "г. Москва, ул. Тверская, д. 1"
)
parse_default_place = _address(
    "the place of settlement (paymentsPlace, tag 1187)", "г. Москва, ул. Ленина, д. 5"
)


def parse_ask_place(raw: object) -> object:
    try:
        return _bool(raw)
    except BadValue:
        raise BadValue(
            "is not allowed; expected true (ask where the money is taken) or false "
            "(use default-place without asking)"
        ) from None


def parse_electronic_receipt(raw: object) -> object:
    if raw in ("ask", "never"):
        return raw
    raise BadValue("is not allowed; expected ask (ask for the buyer's e-mail or phone) or never")


def conversation_keys(group: str) -> tuple[SnapKey, ...]:
    """The receipt-setting keys of one chat bot's group (``b24bot``, ``maxbot``)."""
    return (
        SnapKey(
            f"{group}.kassas",
            parse_kassas,
            "kassas a chat receipt may go to, e.g. office-1,office-2 (default: every kassa)",
        ),
        SnapKey(
            f"{group}.taxation-type",
            parse_taxation_type,
            "osn | usnIncome | usnIncomeOutcome | esn | patent (default: the register's only one)",
        ),
        SnapKey(f"{group}.vat", parse_vat, "each position's VAT: none, vat22, vat10… (none)"),
        SnapKey(
            f"{group}.payment-object",
            parse_payment_object,
            "each position's paymentObject, tag 1212 (default service)",
        ),
        SnapKey(
            f"{group}.payments-address",
            parse_payments_address,
            "paymentsAddress, tag 1009 (default: the register's registered address)",
        ),
        SnapKey(
            f"{group}.ask-place",
            parse_ask_place,
            "ask where the money is taken, paymentsPlace tag 1187 (default true)",
        ),
        SnapKey(
            f"{group}.default-place",
            parse_default_place,
            "the place offered at that question; used when ask-place is false",
        ),
        SnapKey(
            f"{group}.electronic-receipt",
            parse_electronic_receipt,
            "ask | never: ask for the buyer's e-mail or phone (default ask)",
        ),
    )
