"""Journal job ids of LAN requests: scoped, reversible, never colliding.

A Web Requests request ``uuid`` (any string a client picks) with sub-tasks 1…n becomes the
jobs ``lan:<uuid>`` (sub-task 1) and ``lan:<uuid>#<k>`` (sub-task k ≥ 2); a KKMServer
``IdCommand`` becomes ``kkm:<IdCommand>``; a synchronous ``operations/query*`` call
``lanq:<random>``. Inside the id, ``%``, ``#`` and anything not printable are written as
``%XX`` (UTF-8 bytes), so the mapping is one to one: the uuid ``a#2`` (``lan:a%232``) can
never be mistaken for sub-task 2 of ``a`` (``lan:a#2``).
"""

from __future__ import annotations

import uuid as uuid_module
from urllib.parse import unquote

from kassa_appliance.bitrix.parsing import MAX_JOB_ID_LENGTH

WR_PREFIX = "lan:"
KKM_PREFIX = "kkm:"
QUERY_PREFIX = "lanq:"
MAX_CLIENT_ID_LENGTH = 100
"""Characters of a client's uuid / IdCommand (a UUID has 36, KKMServer allows 40)."""


def _escape(text: str) -> str:
    pieces = []
    for char in text:
        if char in "%#" or not char.isprintable():
            pieces.append("".join(f"%{byte:02X}" for byte in char.encode("utf-8")))
        else:
            pieces.append(char)
    return "".join(pieces)


def client_id_problem(value: str) -> str | None:
    """Why a uuid / IdCommand cannot be used, or None (it must fit in a job id)."""
    if len(value) > MAX_CLIENT_ID_LENGTH:
        return f"длина {len(value)} символов, допускается не более {MAX_CLIENT_ID_LENGTH}"
    if len(_escape(value)) + len(WR_PREFIX) + 4 > MAX_JOB_ID_LENGTH:
        return "слишком много непечатаемых символов"
    return None


def wr_job_id(request_uuid: str, index: int) -> str:
    """The job of sub-task ``index`` (0-based) of a Web Requests request."""
    base = WR_PREFIX + _escape(request_uuid)
    return base if index == 0 else f"{base}#{index + 1}"


def kkm_job_id(id_command: str) -> str:
    return KKM_PREFIX + _escape(id_command)


def query_job_id() -> str:
    return QUERY_PREFIX + uuid_module.uuid4().hex


def client_id_of(job_id: str) -> str:
    """The uuid / IdCommand a LAN job id came from; any other job id as it is."""
    for prefix in (WR_PREFIX, KKM_PREFIX):
        if job_id.startswith(prefix):
            body = job_id[len(prefix) :].split("#", 1)[0]
            return unquote(body)
    return job_id
