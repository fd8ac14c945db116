"""What a chat bot's settings section holds for the conversation engine.

A bot's section inherits it (``class B24BotConfig(ConversationSettings)``), so the keys are
``b24bot.cashiers``, ``b24bot.kassas``, ``b24bot.vat``… and the same under ``maxbot``.
Every field has a default that makes a valid receipt for a service business on the
simplified system; only ``cashiers`` must be set for anyone to print.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from kassa_appliance.channels.conversation.access import CashierMap
from kassa_appliance.fiscal.receipt_enums import PAYMENT_OBJECTS, TAX_TYPES, TAXATION_TYPES
from kassa_appliance.fiscal.receipt_limits import MAX_ADDRESS_LENGTH
from kassa_appliance.setting_checks import SettingsSection, first_control_character

__all__ = ["ConversationSettings"]


class ConversationSettings(SettingsSection):
    cashiers: CashierMap = Field(default_factory=dict)
    """Allow-list: who may print, as which cashier (access.py for the key format)."""
    kassas: tuple[str, ...] = ()
    """Kassas a receipt may go to; empty: every kassa of the portal that reports a
    heartbeat (KASSADEV). With more than one the bot asks which."""
    taxation_type: str | None = None
    """``taxationType`` (tag 1055); None: the register's only one."""
    vat: str = "none"
    """Each position's VAT (``tax.type``): ``none``, ``vat22``, ``vat10``…"""
    payment_object: str = "service"
    """Each position's ``paymentObject`` (tag 1212): a technician's work is a service."""
    payments_address: str | None = None
    """``paymentsAddress`` (tag 1009); None: the address the register was registered with,
    which is what 54-FZ wants there (docs/chat-bots.md, "Settlements away from the kassa")."""
    ask_place: bool = True
    """Ask where the money is taken and write it as ``paymentsPlace`` (tag 1187)."""
    default_place: str | None = None
    """Offered as a button at the place question, and used when ``ask_place`` is off."""
    electronic_receipt: Literal["ask", "never"] = "ask"
    """Ask for the buyer's e-mail or phone for the electronic copy (tag 1008)."""

    @field_validator("taxation_type")
    @classmethod
    def _taxation(cls, value: str | None) -> str | None:
        if value is not None and value not in TAXATION_TYPES:
            raise ValueError(f"{value!r}: expected one of {', '.join(TAXATION_TYPES)}")
        return value

    @field_validator("vat")
    @classmethod
    def _vat(cls, value: str) -> str:
        if value not in TAX_TYPES:
            raise ValueError(f"{value!r}: expected one of {', '.join(TAX_TYPES)}")
        return value

    @field_validator("payment_object")
    @classmethod
    def _object(cls, value: str) -> str:
        if value not in PAYMENT_OBJECTS:
            raise ValueError(f"{value!r}: expected one of {', '.join(PAYMENT_OBJECTS)}")
        return value

    @field_validator("payments_address", "default_place")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            return None
        if len(value) > MAX_ADDRESS_LENGTH or first_control_character(value) is not None:
            raise ValueError(
                f"expected plain text of at most {MAX_ADDRESS_LENGTH} characters (an address)"
            )
        return value

    @field_validator("kassas")
    @classmethod
    def _kassas(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(dict.fromkeys(k.strip() for k in value if k.strip()))
        for kassa in cleaned:
            if len(kassa) > 64 or first_control_character(kassa) is not None:
                raise ValueError(f"{kassa[:40]!r}: expected a kassa id of at most 64 characters")
        return cleaned
