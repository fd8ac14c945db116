"""Enumerated values in every form the driver takes, and the buyer's contact.

Enumerations: a name, an alias (``pay``) or the FFD code as a number or a digit string
(``paymentMethod: 4``, payment ``type: "0"``, ``tax.type: "10"``), always returned as the
canonical name (or, for the nameless payment types 5–9, the digit string) so that the task
reaches the register in the one form every driver version takes (myscripts_utils.js
``parse*`` functions take a name or whatever ``parseInt`` reads).

Contact (tag 1008): an e-mail, or a phone in the FFD format, ``+`` and the digits with the
country code; common mistakes (8916…, spaces, dashes) get the number to write instead.
"""

from __future__ import annotations

import re

from kassa_appliance.fiscal.receipt_enums import OBSOLETE_TAX_TYPES, TAX_RATE_CODES, TAX_TYPES
from kassa_appliance.fiscal.receipt_limits import MAX_CONTACT_LENGTH
from kassa_appliance.fiscal.receipt_rules import RuleError, check_choice, json_kind, one_of, shown

__all__ = ["check_email_or_phone", "parse_coded_choice", "parse_tax_type"]


def parse_coded_choice(
    value: object,
    *,
    names: tuple[str, ...],
    codes: dict[int, str],
    aliases: dict[str, str] | None = None,
    tag: int | None = None,
) -> str:
    """An enumerated field given by name, alias or FFD code (a number or a digit string);
    returns the canonical name, which every driver version takes."""
    listed = one_of(names)
    code_hint = f" or its tag-{tag} code" if tag else " or its code"
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise RuleError(f"expected one of {listed}{code_hint}, got {json_kind(value)}")
    if isinstance(value, str):
        if value in names:
            return value
        if aliases and value in aliases:
            return aliases[value]
        if value.strip() != value and value.strip() in names:
            raise RuleError(
                f"{shown(value)} has spaces around the name; expected {shown(value.strip())}"
            )
        if not (value.isascii() and value.isdigit()):
            raise RuleError(f"{shown(value)} is not allowed; expected one of {listed}{code_hint}")
        number = int(value)
    else:
        number = value
    if number in codes:
        return codes[number]
    known = one_of([str(code) for code in codes])
    raise RuleError(f"{shown(value)} is not a known code; expected one of {known} or a name")


def parse_tax_type(value: object) -> str:
    """VAT rate: a name (``vat20``) or its rate (``"20"``, ``20``); obsolete ones refused."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if isinstance(value, str) and value in TAX_RATE_CODES:
        value = TAX_RATE_CODES[value]
    return check_choice(value, TAX_TYPES, OBSOLETE_TAX_TYPES)


_EMAIL = re.compile(r"[^@\s]+@[^@\s.]+(\.[^@\s.]+)+")
_PHONE = re.compile(r"\+[0-9]{7,15}")
"""FFD format of a phone in tag 1008: ``+`` and the digits with the country code (E.164)."""
_PHONE_LIKE = re.compile(r"[+0-9][0-9 ()\-]{5,}")


def _phone_hint(value: str) -> str:
    """What to write instead of a phone in a common wrong form (8916…, spaces, dashes)."""
    digits = "".join(c for c in value if c.isdigit())
    if value.startswith("+"):
        return f"+{digits}" if 7 <= len(digits) <= 15 else ""
    if len(digits) == 11 and digits[0] in "78":
        return f"+7{digits[1:]}"
    if len(digits) == 10 and digits[0] == "9":
        return f"+7{digits}"
    return ""


def check_email_or_phone(value: object) -> str:
    """Buyer contact (tag 1008): an e-mail address, or a phone as ``+`` and digits (any
    country). Common mistakes get the number to write instead."""
    if not isinstance(value, str):
        raise RuleError(
            f"expected an e-mail address or a phone as a string, got {json_kind(value)}"
        )
    if len(value) > MAX_CONTACT_LENGTH:
        raise RuleError(
            f"is {len(value)} characters long; expected at most {MAX_CONTACT_LENGTH} characters"
        )
    if _EMAIL.fullmatch(value) or _PHONE.fullmatch(value):
        return value
    if _PHONE_LIKE.fullmatch(value):
        hint = _phone_hint(value)
        instead = f"; write {hint}" if hint else ""
        raise RuleError(
            f"{shown(value)} is not a phone in the FFD format; expected + and the digits"
            f" with the country code, without spaces or dashes (+79161234567){instead}"
        )
    raise RuleError(
        f"{shown(value)} is neither an e-mail address nor a phone number; expected name@domain"
        " or + and the digits with the country code (+79161234567)"
    )
