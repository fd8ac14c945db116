"""The pairing code the Kassa app's *Pairing* page shows: one shell word for ``snap set``.

Format version 1 (docs/configuration.md "Pairing code"; the app's encoder is
``app/src/lib/pairing.ts``)::

    "kp1." + base64url(UTF-8 of compact JSON), no "=" padding

The JSON object holds exactly ``portal``, ``client_id``, ``client_secret``,
``refresh_token``, ``kassa`` and optionally ``spare_refresh_token``, all text. This module
only takes the code apart; the configure hook runs each value through the rules of the
separate key it stands for (``bitrix.portal`` …, ``kassa.id``). Reasons never quote the
code or a value from it: the code carries secrets.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass

from kassa_appliance.inputs import InputRejected, decode_json_bytes

PAIRING_PREFIX = "kp1."
MAX_CODE_LENGTH = 4096
"""Characters of a code: four 512-character secrets, a portal and a kassa id fit twice."""
REQUIRED_FIELDS = ("portal", "client_id", "client_secret", "refresh_token", "kassa")
OPTIONAL_FIELDS = ("spare_refresh_token",)
ALL_FIELDS = (*REQUIRED_FIELDS[:4], *OPTIONAL_FIELDS, REQUIRED_FIELDS[4])
"""In the order the app writes them."""
SECRET_FIELDS = frozenset({"client_secret", "refresh_token", "spare_refresh_token"})
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")


class PairingCodeError(ValueError):
    """The code cannot be read; ``str()`` is the reason, never quoting the code."""


@dataclass(frozen=True)
class PairingCode:
    portal: str
    client_id: str
    client_secret: str
    refresh_token: str
    kassa: str
    spare_refresh_token: str | None = None

    def __repr__(self) -> str:  # never the secrets, not even in a traceback
        shown = f"portal={self.portal!r}, client_id={self.client_id!r}, kassa={self.kassa!r}"
        return f"PairingCode({shown})"


def _payload(code: str) -> bytes:
    text = code.strip()
    if not text.startswith(PAIRING_PREFIX):
        raise PairingCodeError(
            f'does not start with "{PAIRING_PREFIX}"; expected the code the Kassa app\'s '
            "Pairing page shows"
        )
    if len(text) > MAX_CODE_LENGTH:
        raise PairingCodeError(f"is too long; expected at most {MAX_CODE_LENGTH} characters")
    body = text[len(PAIRING_PREFIX) :]
    if not _BASE64URL.fullmatch(body):
        raise PairingCodeError(
            'has characters outside base64url (A-Z, a-z, 0-9, "-", "_"); '
            "expected the code exactly as the Kassa app shows it"
        )
    try:
        return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        raise PairingCodeError(
            "is cut or mistyped (not valid base64url); copy the whole code again"
        ) from None


def decode_pairing_code(code: str) -> PairingCode:
    """The pairing a code carries, each value as text (not yet checked by the key rules)."""
    try:
        value = decode_json_bytes(_payload(code), "pairing code")
    except InputRejected:
        raise PairingCodeError(
            "is cut or mistyped (its content is not JSON); copy the whole code again"
        ) from None
    if not isinstance(value, dict):
        raise PairingCodeError("does not hold a pairing; expected a code from the Kassa app")
    unknown = sorted(str(key)[:40] for key in value if key not in ALL_FIELDS)
    if unknown:
        raise PairingCodeError(
            f"has the unknown field {', '.join(unknown)}; expected only {', '.join(ALL_FIELDS)}"
        )
    missing = [key for key in REQUIRED_FIELDS if key not in value]
    if missing:
        raise PairingCodeError(
            f"lacks {', '.join(missing)}; expected all of {', '.join(REQUIRED_FIELDS)}"
        )
    wrong = [key for key in ALL_FIELDS if key in value and not isinstance(value[key], str)]
    if wrong:
        raise PairingCodeError(f"has {', '.join(wrong)} that is not text; expected text")
    return PairingCode(
        portal=value["portal"],
        client_id=value["client_id"],
        client_secret=value["client_secret"],
        refresh_token=value["refresh_token"],
        kassa=value["kassa"],
        spare_refresh_token=value.get("spare_refresh_token"),
    )
