"""Wire formats of the push server: message ids and the three framings a client may ask for.

* text (server v≤4, the default): NGINX records ``#!NGINXNMS!#{…}#!NGINXNME!#``, several per
  WebSocket frame, the published body spliced in *unparsed* (so a malformed body makes a
  malformed record, exactly like ps2's ``"---replace---"`` hack);
* protobuf (v4 with ``binaryMode=true``): ``ResponseBatch`` as in ps2 ``lib/models/*.proto``;
* JSON-RPC (v5): ``incoming.message`` requests.

Facts: bitrix24-notes.md §1.5.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from email.utils import formatdate

RECORD_START = "#!NGINXNMS!#"
RECORD_END = "#!NGINXNME!#"
SENDER_BACKEND = 2


@dataclass(frozen=True)
class StoredMessage:
    mid: str
    channels: frozenset[str]
    """32-hex private channel ids the message was published to."""
    body: str
    """The raw published body (normally a JSON object; not re-encoded)."""
    created: float
    expiry: int
    """Seconds the message is kept for ``mid`` replay; 0 means broadcast only."""


class MidCounter:
    """26-digit mids: 10-digit server start time + 16-digit zero-padded counter."""

    def __init__(self, start_unix: float) -> None:
        self._prefix = f"{int(start_unix):010d}"[-10:]
        self._counter = 0

    def next(self) -> str:
        self._counter += 1
        return f"{self._prefix}{self._counter:016d}"


def text_record(message: StoredMessage) -> str:
    created = message.created
    head = json.dumps(
        {
            "id": int(message.mid[10:]),
            "mid": message.mid,
            "channel": "-",
            "tag": f"{int(created * 1000) % 1000:03d}",
            "time": formatdate(created, usegmt=True),
        },
        separators=(",", ":"),
    )
    # The body is spliced in unparsed, like ps2's "---replace---" hack.
    return RECORD_START + head[:-1] + ',"text":' + message.body + "}" + RECORD_END


def text_frame(messages: list[StoredMessage]) -> str:
    return "".join(text_record(message) for message in messages)


def jsonrpc_request(message: StoredMessage) -> str:
    head = json.dumps({"jsonrpc": "2.0", "method": "incoming.message"}, separators=(",", ":"))
    params = (
        f'{{"mid":{json.dumps(message.mid)},"body":{message.body},'
        f'"sender":{{"type":{SENDER_BACKEND},"id":""}}}}'
    )
    return head[:-1] + ',"params":' + params + "}"


def jsonrpc_frame(messages: list[StoredMessage]) -> str:
    requests = [jsonrpc_request(message) for message in messages]
    return requests[0] if len(requests) == 1 else "[" + ",".join(requests) + "]"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(field: int, payload: bytes) -> bytes:
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _varint_field(field: int, value: int) -> bytes:
    return _varint(field << 3) + _varint(value)


def _fixed32_field(field: int, value: int) -> bytes:
    return _varint(field << 3 | 5) + struct.pack("<I", value & 0xFFFFFFFF)


def protobuf_frame(messages: list[StoredMessage]) -> bytes:
    """``ResponseBatch{responses: [Response{outgoingMessages{messages: [...]}}]}``."""
    encoded = b""
    for message in messages:
        sender = _varint_field(1, SENDER_BACKEND)
        outgoing = (
            _length_delimited(1, bytes.fromhex(message.mid))
            + _length_delimited(2, message.body.encode())
            + _varint_field(3, message.expiry)
            + _fixed32_field(4, int(message.created))
            + _length_delimited(5, sender)
        )
        encoded += _length_delimited(1, outgoing)
    response = _length_delimited(1, encoded)
    return _length_delimited(1, response)
