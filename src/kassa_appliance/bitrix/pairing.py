"""Whether the appliance is still paired with Bitrix24, and why not.

The OAuth client writes ``<data_dir>/pairing.json`` (atomic, mode 0600) when the pairing
changes: a new pairing, the spare chain used up, or the pairing lost (every refresh token
refused). ``kassa-appliance status`` reads it, so a separate CLI process shows
``bitrix_paired: false`` with the reason, and the daemon's health listens to it
(:func:`subscribe`) to turn ``blocked`` with the re-pair command. A new configured refresh
token (another fingerprint) is a re-pairing and makes an old "lost" record void.

The pairing value (``bitrix.refresh-token``) is one refresh token, or two separated by a
comma: ``<main>,<spare>``; see :mod:`kassa_appliance.bitrix.token_chains`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from kassa_appliance.bitrix.settings import BitrixConfig
from kassa_appliance.bitrix.token_store import TOKEN_FILE_NAME, pairing_fingerprint
from kassa_appliance.files import write_private_file

log = logging.getLogger(__name__)

PAIRING_FILE_NAME = "pairing.json"
REPAIR_COMMAND = "sudo snap set kassa-appliance bitrix.refresh-token=<new token>"
SpareState = Literal["ready", "used", "none"]

DEBUG_PAUSE_BEFORE_TOKEN_SAVE_ENV = "KASSA_DEBUG_PAUSE_BEFORE_TOKEN_SAVE"
"""Test-only (with ``KASSA_DEBUG_HOOKS=1``): a file path. The first time a rotated token
pair arrives while that file does not exist, the daemon creates it and hangs *before*
saving the pair, so a test can SIGKILL it in that window. Never set on a device."""


@dataclass(frozen=True)
class PairingState:
    paired: bool
    paired_with: str | None
    """Fingerprint of the configured pairing value this state is about."""
    reason: str | None = None
    """Why the appliance is not paired (None while paired)."""
    spare_chain: SpareState = "none"
    changed_at: int = 0


Listener = Callable[[PairingState], None]
_listeners: list[Listener] = []


def subscribe(listener: Listener) -> Callable[[], None]:
    """Call ``listener`` on every pairing change in this process; returns the unsubscribe."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


def announce(state: PairingState) -> None:
    for listener in list(_listeners):
        try:
            listener(state)
        except Exception:  # a listener must never break token handling
            log.exception("pairing listener failed")


class PairingStateFile:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> PairingState | None:
        """The recorded state, None when missing or unreadable (it is advisory)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return PairingState(
                paired=bool(data["paired"]),
                paired_with=data.get("paired_with"),
                reason=data.get("reason"),
                spare_chain=data.get("spare_chain") or "none",
                changed_at=int(data.get("changed_at") or 0),
            )
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as error:
            log.warning("ignoring unreadable %s: %s", self.path.name, error)
            return None

    def save(self, state: PairingState) -> PairingState:
        """Write ``state`` (stamped now) and tell the listeners; OSError is logged only."""
        state = PairingState(**{**asdict(state), "changed_at": int(time.time())})
        try:
            write_private_file(self.path, json.dumps(asdict(state), indent=2) + "\n")
        except OSError as error:
            log.error("cannot record the Bitrix24 pairing state in %s: %s", self.path, error)
        announce(state)
        return state


def split_pairing_value(value: str) -> tuple[str, str | None]:
    """``<main>`` or ``<main>,<spare>`` → (main, spare or None)."""
    main, _, spare = value.partition(",")
    return main.strip(), (spare.strip() or None)


def configured_fingerprint(bitrix: BitrixConfig) -> str | None:
    if bitrix.refresh_token is None or not bitrix.client_id:
        return None
    return pairing_fingerprint(bitrix.client_id, bitrix.refresh_token.get_secret_value())


def pairing_status(bitrix: BitrixConfig, data_dir: Path) -> dict[str, Any]:
    """What ``kassa-appliance status`` shows about Bitrix24: ``bitrix_paired`` and, when
    known, the reason it is not and the state of the spare token chain."""
    oauth = bool(bitrix.portal and bitrix.client_id and bitrix.client_secret)
    if not oauth:
        paired = bool(bitrix.webhook) or bool(bitrix.portal and bitrix.refresh_token)
        return {"bitrix_paired": paired}
    configured = configured_fingerprint(bitrix)
    if configured is None and not (data_dir / TOKEN_FILE_NAME).exists():
        return {
            "bitrix_paired": False,
            "bitrix_pairing_problem": f"no refresh token configured; pair with {REPAIR_COMMAND}",
        }
    state = PairingStateFile(data_dir / PAIRING_FILE_NAME).load()
    if state is None or (configured is not None and state.paired_with != configured):
        return {"bitrix_paired": True}  # not refused yet, or re-paired since
    status: dict[str, Any] = {"bitrix_paired": state.paired}
    if not state.paired:
        status["bitrix_pairing_problem"] = state.reason
    else:
        status["bitrix_spare_chain"] = state.spare_chain
    return status


def debug_pause_before_token_save(
    environ: dict[str, str] | None = None,
) -> Callable[[], Awaitable[None]] | None:
    """The test-only pause of :data:`DEBUG_PAUSE_BEFORE_TOKEN_SAVE_ENV`, or None (always
    None unless ``KASSA_DEBUG_HOOKS=1``)."""
    env = dict(os.environ) if environ is None else environ
    target = env.get(DEBUG_PAUSE_BEFORE_TOKEN_SAVE_ENV)
    if env.get("KASSA_DEBUG_HOOKS") != "1" or not target:
        return None
    marker = Path(target)

    async def pause() -> None:
        if marker.exists():
            return
        log.warning("debug hook: pausing before the rotated tokens are saved")
        marker.write_text(f"{os.getpid()}\n", encoding="utf-8")
        await asyncio.sleep(3600)

    return pause
