"""The commands a person may type (with or without the slash, Russian or English)."""

from __future__ import annotations

__all__ = ["COMMANDS", "command_of"]

COMMANDS: dict[str, str] = {
    "start": "help",
    "help": "help",
    "помощь": "help",
    "справка": "help",
    "?": "help",
    "kassas": "kassas",
    "status": "kassas",
    "кассы": "kassas",
    "касса": "kassas",
    "статус": "kassas",
    "last": "last",
    "receipts": "last",
    "чеки": "last",
    "последние": "last",
    "return": "return",
    "возврат": "return",
    "cancel": "cancel",
    "отмена": "cancel",
    "отменить": "cancel",
}
"""Typed word → command: ``help``, ``kassas``, ``last``, ``return``, ``cancel``."""


def command_of(text: str) -> str | None:
    """The command a message is, or None for anything else (positions, answers)."""
    words = text.strip().split()
    if len(words) != 1:
        return None
    word = words[0].lower()
    slash = word.startswith("/")
    word = word.lstrip("/").split("@", 1)[0]  # "/help@bot" as messengers send it in groups
    command = COMMANDS.get(word)
    if command is None or (not slash and word == "?" and len(text.strip()) != 1):
        return None
    return command
