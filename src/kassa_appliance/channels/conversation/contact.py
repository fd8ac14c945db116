"""The buyer's e-mail or phone for the electronic receipt (tag 1008), read from a chat.

The fiscal core's own check decides what is valid (``check_email_or_phone``); a Russian
number written the usual ways (``8 916 123-45-67``, ``+7 (916) 123 45 67``, ``9161234567``)
is taken in the FFD form ``+79161234567`` and shown in the preview.
"""

from __future__ import annotations

import re

from kassa_appliance.channels.conversation import texts
from kassa_appliance.fiscal.receipt_rules import RuleError
from kassa_appliance.fiscal.receipt_values import check_email_or_phone

__all__ = ["ContactError", "read_contact"]

_PHONE_CHARS = re.compile(r"[+0-9 ()\-]{6,30}")


class ContactError(ValueError):
    """Not an e-mail nor a phone; the message says what to write."""


def _russian_phone(value: str) -> str | None:
    if not _PHONE_CHARS.fullmatch(value):
        return None
    digits = "".join(c for c in value if c.isdigit())
    if value.startswith("+"):
        return f"+{digits}"
    if len(digits) == 11 and digits[0] in "78":
        return f"+7{digits[1:]}"
    if len(digits) == 10 and digits[0] == "9":
        return f"+7{digits}"
    return None


def read_contact(text: str) -> str:
    value = " ".join(text.split())
    candidates = [value]
    phone = _russian_phone(value)
    if phone is not None:
        candidates.insert(0, phone)
    for candidate in candidates:
        try:
            return check_email_or_phone(candidate)
        except RuleError:
            continue
    shown = value if len(value) <= 60 else value[:59] + "…"
    shown = "".join(c if c.isprintable() else "�" for c in shown)
    hint = texts.BAD_CONTACT_PHONE_HINT.format(phone=phone) if phone else ""
    raise ContactError(texts.BAD_CONTACT.format(value=shown, hint=hint))
