"""Parsing what the push server sends: NGINX text records (v≤4, several per frame) and
JSON-RPC ``incoming.message`` requests (v5). bitrix24-notes.md §1.5–§1.6.

A malformed record never raises: it comes back as a :class:`Record` with ``problem`` set,
so the caller can log it and keep the connection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

_RECORD_RE = re.compile(r"#!NGINXNMS!#(.*?)#!NGINXNME!#", re.DOTALL)
_MID_RE = re.compile(r"^[0-9a-fA-F]{1,64}$")


@dataclass(frozen=True)
class PullMessage:
    """One command from the portal, e.g. module_id ``application``, command ``kassa.job``."""

    module_id: str
    command: str
    params: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)
    mid: str | None = None


@dataclass(frozen=True)
class Record:
    mid: str | None
    message: PullMessage | None
    problem: str | None = None


def parse_text_frame(frame: str) -> list[Record]:
    """Every ``#!NGINXNMS!#…#!NGINXNME!#`` record of one text frame, in order."""
    chunks = _RECORD_RE.findall(frame)
    if not chunks:
        return [Record(None, None, f"text frame of {len(frame)} chars has no NGINX records")]
    return [_text_record(chunk) for chunk in chunks]


def _text_record(chunk: str) -> Record:
    try:
        record = json.loads(chunk)
    except json.JSONDecodeError as exc:
        return Record(None, None, f"record is not JSON ({exc.msg} at char {exc.pos})")
    if not isinstance(record, dict):
        return Record(None, None, f"record is a JSON {type(record).__name__}, expected an object")
    mid = _mid(record.get("mid"))
    body = record.get("text")
    outer_extra = record.get("extra")
    try:
        message = message_from_body(body, mid, outer_extra)
    except ValueError as exc:
        return Record(mid, None, str(exc))
    return Record(mid, message)


def parse_jsonrpc_frame(frame: str) -> list[Record]:
    """v5: one JSON-RPC request or a batch; only ``incoming.message`` carries commands."""
    try:
        decoded = json.loads(frame)
    except json.JSONDecodeError as exc:
        return [Record(None, None, f"JSON-RPC frame is not JSON ({exc.msg})")]
    items = decoded if isinstance(decoded, list) else [decoded]
    records: list[Record] = []
    for item in items:
        if not isinstance(item, dict):
            records.append(Record(None, None, "JSON-RPC item is not an object"))
            continue
        if item.get("method") != "incoming.message":
            if "method" in item:
                records.append(Record(None, None, f"unknown JSON-RPC method {item['method']!r}"))
            continue  # a response to a request of ours: nothing to deliver
        params = item.get("params")
        if not isinstance(params, dict):
            records.append(Record(None, None, "incoming.message without params object"))
            continue
        mid = _mid(params.get("mid"))
        body = params.get("body")
        try:
            if isinstance(body, dict):
                body = dict(body)
                merged = _params(body.get("params"))
                for extra_key in ("user_params", "dictionary"):
                    if isinstance(params.get(extra_key), dict):
                        merged.update(params[extra_key])
                body["params"] = merged
                extra = body.get("extra")
                extra = dict(extra) if isinstance(extra, dict) else {}
                body["extra"] = {**extra, "sender": params.get("sender")}
            records.append(Record(mid, message_from_body(body, mid, None)))
        except ValueError as exc:
            records.append(Record(mid, None, str(exc)))
    return records


def message_from_body(body: Any, mid: str | None, outer_extra: Any = None) -> PullMessage:
    """Validate a message body ``{module_id, command, params, extra}``."""
    if not isinstance(body, dict):
        raise ValueError(f"message body is a {type(body).__name__}, expected an object")
    module_id = body.get("module_id")
    command = body.get("command")
    if not isinstance(module_id, str) or not module_id:
        raise ValueError("message body has no module_id string")
    if not isinstance(command, str) or not command:
        raise ValueError(f"message of module {module_id!r} has no command string")
    extra: dict[str, Any] = dict(outer_extra) if isinstance(outer_extra, Mapping) else {}
    if isinstance(body.get("extra"), Mapping):
        extra.update(body["extra"])
    return PullMessage(
        module_id=module_id.lower(),
        command=command,
        params=_params(body.get("params")),
        extra=extra,
        mid=mid,
    )


def _params(value: Any) -> dict[str, Any]:
    if value is None or value == []:  # PHP encodes an empty array as []
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"message params is a {type(value).__name__}, expected an object")
    return dict(value)


def _mid(value: Any) -> str | None:
    return value if isinstance(value, str) and _MID_RE.match(value) else None
