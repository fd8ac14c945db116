"""What the bot host keeps in the data directory (``b24bot.json``, written atomically, 0600):
the registered bot's id, code and ``botToken`` (a secret: it authorises ``imbot.v2`` calls
made through an inbound webhook), the id of its button command, the ``Event.get`` offset,
and the newest message id seen in each dialog (where a look for an earlier reply starts).

The offset is saved after the events below it were handled, so a restart (or SIGKILL)
re-reads at most the last batch, which the conversation engine ignores by ``update_id``.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from kassa_appliance.files import write_private_file

log = logging.getLogger(__name__)

STATE_FILE_NAME = "b24bot.json"
TOKEN_LENGTH = 40
"""``botToken`` is at most 40 characters (bot-register.md)."""
DIALOGS_KEPT = 500


def new_bot_token() -> str:
    return secrets.token_urlsafe(30)[:TOKEN_LENGTH]


@dataclass
class BotState:
    bot_id: int | None = None
    code: str | None = None
    bot_token: str = field(default_factory=new_bot_token)
    command_id: int | None = None
    offset: int | None = None
    last_message: dict[str, int] = field(default_factory=dict)
    """dialogId → the newest message id this bot has seen or sent there."""

    def note_message(self, dialog_id: str, message_id: int) -> None:
        if message_id > self.last_message.get(dialog_id, 0):
            self.last_message.pop(dialog_id, None)
            self.last_message[dialog_id] = message_id
            while len(self.last_message) > DIALOGS_KEPT:
                self.last_message.pop(next(iter(self.last_message)))


class BotStateFile:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / STATE_FILE_NAME

    def load(self) -> BotState:
        try:
            raw: Any = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return BotState()
        except (OSError, ValueError):
            log.warning("%s is unreadable; registering the bot anew", self.path.name)
            return BotState()
        if not isinstance(raw, dict):
            return BotState()
        state = BotState()
        state.bot_id = _int(raw.get("bot_id"))
        state.code = raw.get("code") if isinstance(raw.get("code"), str) else None
        token = raw.get("bot_token")
        if isinstance(token, str) and 0 < len(token) <= TOKEN_LENGTH:
            state.bot_token = token
        state.command_id = _int(raw.get("command_id"))
        state.offset = _int(raw.get("offset"))
        dialogs = raw.get("last_message")
        if isinstance(dialogs, dict):
            state.last_message = {
                str(k): v for k, v in dialogs.items() if isinstance(v, int) and v > 0
            }
        return state

    def save(self, state: BotState) -> None:
        write_private_file(self.path, json.dumps(asdict(state), ensure_ascii=False))


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
