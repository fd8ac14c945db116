"""Limits every door applies to a job's JSON before anything parses it deeply.

A job arrives as text (a CLI file or stdin, a KASSAJOB item's TASK and REPLY, later a chat
bot, the LAN API) or as an already decoded value. Whatever the door, the same limits hold
before the receipt models, the engine or the journal see it, so no input can raise an
exception deep inside them (``RecursionError``, ``UnicodeEncodeError``, Python's 4,300-digit
integer limit) and stop the queue:

* **size**: at most :data:`MAX_TASK_BYTES` of UTF-8 text per task;
* **nesting**: at most :data:`MAX_DEPTH` levels of objects and lists. A real Atol task is
  at most six deep (task → items → position → agentInfo → payingAgent → phones);
* **strings**: valid Unicode (no lone surrogates such as ``\\ud800``), at most
  :data:`MAX_STRING_LENGTH` characters; object keys at most :data:`MAX_KEY_LENGTH`. The
  longest Atol field is a 1,024-character barcode, and each field's own limit (FFD tag
  length) is checked later by the receipt rules;
* **numbers**: at most :data:`MAX_NUMBER_LENGTH` characters and finite (no ``NaN`` or
  ``Infinity``, which Python's JSON reader would otherwise accept). The largest sum a
  register takes has 13 characters (``9999999999.99``).

Where the register has a limit the receipt rules apply it (100 positions, tag lengths);
the limits here are generous bounds that only garbage reaches. Every message names the
place (``items[0].name``), what is wrong and what was expected, in the integrator's words.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

MAX_TASK_BYTES = 1024 * 1024
"""One task as UTF-8 JSON text: 1 MiB, about ten times a receipt of 100 positions with
every optional field filled in."""
MAX_DEPTH = 32
"""Levels of nested objects and lists (the task itself is level 1)."""
MAX_STRING_LENGTH = 64 * 1024
"""Characters in one string value."""
MAX_KEY_LENGTH = 256
"""Characters in one object key (Atol's longest field name has 31)."""
MAX_NUMBER_LENGTH = 40
"""Characters in one JSON number, sign, digits, point and exponent included."""
MAX_CONTAINER_ITEMS = 10_000
"""Entries in one object or list."""

SHOWN_LENGTH = 60
"""Characters of an offending value quoted in a message."""


class InputRejected(ValueError):
    """The input breaks a limit or is not JSON at all; ``str()`` says where and why."""


def shorten(text: str, limit: int = SHOWN_LENGTH) -> str:
    """``text`` fit to quote in a message: control characters, invisible characters and
    lone surrogates escaped (``\\x00``, ``\\ud800``), cut to at most ``limit`` characters
    with "…" (never inside an escape). Only the first ``limit + 1`` characters are looked
    at, so a huge text costs no more than a short one."""
    pieces: list[str] = []
    size = 0
    cut_at = 0  # pieces that fit in ``limit - 1``, leaving room for the "…"
    for char in text[: limit + 1]:
        piece = char if char.isprintable() and not _is_surrogate(char) else _escape(char)
        size += len(piece)
        if size > limit:
            return "".join(pieces[:cut_at]) + "…"
        pieces.append(piece)
        if size <= limit - 1:
            cut_at = len(pieces)
    return "".join(pieces)


def _is_surrogate(char: str) -> bool:
    return 0xD800 <= ord(char) <= 0xDFFF


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def format_location(path: tuple[str | int, ...]) -> str:
    """``('items', 0, 'name')`` → ``items[0].name``; the empty path is the whole value."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            name = shorten(part, 40) if part else '""'
            text += f".{name}" if text else name
    return text


def _where(what: str, path: tuple[str | int, ...]) -> str:
    location = format_location(path)
    return f"{what}, {shorten(location, 120)}" if location else what


def decode_json_bytes(data: bytes, what: str = "task") -> Any:
    """Decode JSON sent as bytes (a file, stdin, an HTTP body): UTF-8 only, then
    :func:`decode_json_text`. A UTF-16 or UTF-32 text is named as such, not garbled."""
    if len(data) > MAX_TASK_BYTES:
        raise InputRejected(
            f"{what}: {len(data):,} bytes is too large; expected at most {MAX_TASK_BYTES:,} bytes"
        )
    encoding = _foreign_encoding(data)
    if encoding is not None:
        raise InputRejected(f"{what}: the text is {encoding}; expected UTF-8")
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]  # a UTF-8 byte order mark, as Windows editors write it
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputRejected(
            f"{what}: byte {error.start} (0x{data[error.start]:02x}) is not valid UTF-8; "
            "expected UTF-8 text"
        ) from None
    return decode_json_text(text, what)


def _foreign_encoding(data: bytes) -> str | None:
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return "UTF-32 encoded"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 encoded"
    head = data[:64]
    if len(head) >= 4 and head.count(0) * 2 >= len(head):
        return "UTF-16 or UTF-32 encoded (every other byte is zero)"
    return None


def decode_json_text(text: str, what: str = "task") -> Any:
    """Parse JSON text within the limits; raises :class:`InputRejected` with the reason."""
    size = len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_TASK_BYTES:
        raise InputRejected(
            f"{what}: {size:,} bytes is too large; expected at most {MAX_TASK_BYTES:,} bytes"
        )
    try:
        value = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_refuse_constant,
        )
    except RecursionError:
        raise InputRejected(
            f"{what}: nested far deeper than {MAX_DEPTH} levels; expected at most {MAX_DEPTH}"
        ) from None
    except _NumberRejected as error:
        raise InputRejected(f"{what}: {error}") from None
    except json.JSONDecodeError as error:
        raise InputRejected(
            f"{what}: not valid JSON (line {error.lineno}, column {error.colno}: {error.msg})"
        ) from None
    check_value(value, what)
    return value


class _NumberRejected(ValueError):
    pass


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_LENGTH:
        raise _NumberRejected(_long_number(text))
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_LENGTH:
        raise _NumberRejected(_long_number(text))
    value = float(text)
    if not math.isfinite(value):
        raise _NumberRejected(f"the number {text} is out of range; expected a finite number")
    return value


def _long_number(text: str) -> str:
    return (
        f"a number of {len(text):,} characters ({shorten(text, 20)}) is too long; "
        f"expected at most {MAX_NUMBER_LENGTH} characters"
    )


def _refuse_constant(name: str) -> Any:
    raise _NumberRejected(f"{name} is not a JSON number; expected a finite number")


def check_value(value: Any, what: str = "task") -> None:
    """Check an already decoded JSON value against the limits (walked iteratively, so any
    depth is safe to check). Raises :class:`InputRejected` naming the first problem.

    Numbers may be ``int``, ``float`` or ``Decimal`` (``json.loads(parse_float=Decimal)``)."""
    for path, item in _walk(value, what):
        if isinstance(item, str):
            _check_string(item, what, path, "text", MAX_STRING_LENGTH)
        elif isinstance(item, bool) or item is None:
            continue
        elif isinstance(item, int | float | Decimal):
            _check_number(item, what, path)
        else:
            raise InputRejected(
                f"{_where(what, path)}: not a JSON value; "
                "expected text, a number, true, false, null, an object or a list"
            )


def _check_number(number: float | Decimal, what: str, path: tuple[str | int, ...]) -> None:
    if isinstance(number, int):
        # bit_length first: str() of a huge int is slow, and refused past 4,300 digits
        too_long = number.bit_length() > 4 * MAX_NUMBER_LENGTH or (
            len(str(number)) > MAX_NUMBER_LENGTH
        )
    else:
        if isinstance(number, Decimal):
            finite, nan = number.is_finite(), number.is_nan()
        else:
            finite, nan = math.isfinite(number), math.isnan(number)
        if not finite:
            name = "NaN" if nan else ("Infinity" if number > 0 else "-Infinity")
            raise InputRejected(
                f"{_where(what, path)}: {name} is not a finite number; expected a finite number"
            )
        too_long = isinstance(number, Decimal) and (
            len(number.as_tuple().digits) > MAX_NUMBER_LENGTH
            or len(str(number)) > MAX_NUMBER_LENGTH
        )
    if too_long:
        raise InputRejected(
            f"{_where(what, path)}: the number is too long; "
            f"expected at most {MAX_NUMBER_LENGTH} characters"
        )


def _walk(value: Any, what: str) -> Iterator[tuple[tuple[str | int, ...], Any]]:
    """Every value under ``value`` with its path, depth first, checking containers."""
    stack: list[tuple[tuple[str | int, ...], Any, int]] = [((), value, 1)]
    while stack:
        path, item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise InputRejected(
                    f"{_where(what, path)}: nested {depth} levels deep; "
                    f"expected at most {MAX_DEPTH} levels of objects and lists"
                )
            if len(item) > MAX_CONTAINER_ITEMS:
                kind = "object" if isinstance(item, dict) else "list"
                raise InputRejected(
                    f"{_where(what, path)}: the {kind} has {len(item):,} entries; "
                    f"expected at most {MAX_CONTAINER_ITEMS:,}"
                )
            if isinstance(item, dict):
                children: list[tuple[tuple[str | int, ...], Any, int]] = []
                for key, child in item.items():
                    if not isinstance(key, str):
                        raise InputRejected(f"{_where(what, path)}: object keys must be text")
                    _check_string(key, what, path, "field name", MAX_KEY_LENGTH)
                    children.append(((*path, key), child, depth + 1))
                stack.extend(reversed(children))
            else:
                stack.extend(
                    ((*path, index), child, depth + 1)
                    for index, child in reversed(list(enumerate(item)))
                )
            continue
        yield path, item


def _check_string(text: str, what: str, path: tuple[str | int, ...], kind: str, limit: int) -> None:
    if len(text) > limit:
        raise InputRejected(
            f"{_where(what, path)}: a {kind} of {len(text):,} characters "
            f"({shorten(text, 20)}) is too long; expected at most {limit:,}"
        )
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as error:
            raise InputRejected(
                f"{_where(what, path)}: the {kind} holds {shorten(text[error.start], 10)} at "
                f"character {error.start}, which is not a Unicode character (a lone surrogate "
                "escape); expected valid Unicode text"
            ) from None
