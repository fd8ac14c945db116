"""Who may print from a chat, and as which cashier.

Each messenger's bot has an allow-list (its ``cashiers`` setting). An entry names a
Bitrix24 user (``17``), a Bitrix24 department (``d5``: everyone in it) or a MAX user
(``4123456``), and maps it to the cashier written into the receipt: ``operator.name``
(tag 1021, the position and surname of the person who takes the money) and
``operator.vatin`` (tag 1203, that person's INN). A user's own entry wins over a
department's; among departments the first entry listed that matches wins.

The ``snap set`` form (the bot helpers' keys ``b24bot.cashiers`` and ``maxbot.cashiers``)::

    17=Мастер Иванов И.И.:500100732259,d5=Мастер Петров П.П.:7707083893,18=Сидорова А.

entries separated by ``,`` or ``;``; ``who=name`` and optionally ``:INN``. In
``config.json`` the same text, or an object ``{"17": {"name": …, "inn": …}}``.
Anyone else gets a polite refusal and nothing is created (service.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator

from kassa_appliance.channels.conversation.transport import Incoming
from kassa_appliance.fiscal.receipt_limits import MAX_OPERATOR_NAME_LENGTH
from kassa_appliance.fiscal.receipt_rules import RuleError, check_inn
from kassa_appliance.setting_checks import first_control_character

__all__ = ["Cashier", "CashierMap", "cashier_for", "describe_cashiers", "parse_cashiers"]

_WHO = re.compile(r"(?:d|D)?[0-9]{1,19}")
_EXAMPLE = "17=Мастер Иванов И.И.:500100732259,d5=Мастер Петров П.П."


class Cashier(BaseModel):
    """The person on the receipt (tags 1021/1203)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    inn: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("the cashier's name is empty; expected e.g. Мастер Иванов И.И.")
        if len(value) > MAX_OPERATOR_NAME_LENGTH:
            raise ValueError(
                f"the cashier's name has {len(value)} characters;"
                f" expected at most {MAX_OPERATOR_NAME_LENGTH} (tag 1021)"
            )
        if first_control_character(value) is not None or any(c in value for c in ",;=:"):
            raise ValueError(
                "the cashier's name holds a control character or one of , ; = :;"
                " expected plain text such as Мастер Иванов И.И."
            )
        return value

    @field_validator("inn")
    @classmethod
    def _inn(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        try:
            return check_inn(value.strip())
        except RuleError as error:
            raise ValueError(f"the cashier's INN: {error}") from None


def parse_cashiers(text: str) -> dict[str, Cashier]:
    """The ``cashiers`` key: ``who=name[:INN]`` entries separated by ``,`` or ``;``.
    Raises ValueError naming the entry, what is wrong and the expected form."""
    result: dict[str, Cashier] = {}
    for raw in re.split(r"[,;]", text):
        entry = raw.strip()
        if not entry:
            continue
        who, sep, rest = entry.partition("=")
        who = who.strip()
        if not sep or not _WHO.fullmatch(who):
            raise ValueError(
                f"entry {entry[:40]!r}: expected who=name[:INN] where who is a user id (17)"
                f" or d and a department id (d5), e.g. {_EXAMPLE}"
            )
        name, _, inn = rest.partition(":")
        key = who.lower()
        if key in result:
            raise ValueError(f"entry {entry[:40]!r}: {who} is listed twice; expected it once")
        try:
            result[key] = Cashier(name=name, inn=inn.strip() or None)
        except ValueError as error:
            problems = getattr(error, "errors", None)
            detail = problems()[0]["msg"] if callable(problems) else str(error)
            reason = detail.removeprefix("Value error, ")
            raise ValueError(f"entry {entry[:40]!r}: {reason}") from None
    return result


def _coerce(value: Any) -> Any:
    if isinstance(value, str):
        return parse_cashiers(value)
    if isinstance(value, Mapping):
        checked: dict[str, Any] = {}
        for who, cashier in value.items():
            if not isinstance(who, str) or not _WHO.fullmatch(who):
                raise ValueError(
                    f"{str(who)[:40]!r}: expected a user id (17) or d and a department id (d5)"
                )
            checked[who.lower()] = cashier
        return checked
    return value


CashierMap = Annotated[dict[str, Cashier], BeforeValidator(_coerce)]
"""The ``cashiers`` setting: ``"17"``/``"d5"`` → :class:`Cashier` (text or object form)."""


def cashier_for(cashiers: Mapping[str, Cashier], incoming: Incoming) -> Cashier | None:
    """The cashier this update's author prints as, or None (not on the allow-list)."""
    own = cashiers.get(incoming.user_id.strip())
    if own is not None and incoming.user_id.strip().isdigit():
        return own
    if incoming.messenger != "b24":
        return None  # departments are a Bitrix24 notion
    departments = {f"d{number}" for number in incoming.department_ids}
    for who, cashier in cashiers.items():
        if who in departments:
            return cashier
    return None


def describe_cashiers(cashiers: Mapping[str, Cashier]) -> str:
    """The key's text form of a map (for ``snap get`` style display)."""
    parts = []
    for who, cashier in cashiers.items():
        parts.append(f"{who}={cashier.name}" + (f":{cashier.inn}" if cashier.inn else ""))
    return ",".join(parts)
