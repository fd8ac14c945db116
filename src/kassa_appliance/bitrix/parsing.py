"""Reading a stored KASSAJOB item's texts into a job — or the reason it cannot be one.

Every text of the item is checked with the shared input limits
(:func:`kassa_appliance.inputs.decode_json_text`) before anything parses it deeply, so a
TASK or REPLY nested thousands of levels deep, holding a lone surrogate ``\\ud800`` or
megabytes long becomes a refusal with a reason written back to Bitrix24, never an
exception in the link.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kassa_appliance.inputs import InputRejected, check_value, decode_json_text, shorten

MAX_JOB_ID_LENGTH = 128
"""Characters in a job id (the item's NAME): a UUID has 36; Bitrix24 allows 255."""


@dataclass(frozen=True)
class Refusal:
    """The item is answered ``failed`` with ``code`` and ``reason``; nothing is printed."""

    code: str
    reason: str


@dataclass(frozen=True)
class ParsedJob:
    task: dict[str, Any]
    reply: dict[str, Any] | None


def json_kind(value: Any) -> str:
    """A decoded JSON value's kind in the integrator's words."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "text"
    if isinstance(value, bool):
        return "true or false"
    if value is None:
        return "null"
    return "a number"


LOCAL_JOB_PREFIXES = ("lan:", "kkm:", "relay:")
"""Job ids of jobs that arrive here other than through the Bitrix24 outbox (the LAN API's
``lan:``/``kkm:``, the relay's ``relay:``). Their KASSAJOB items are mirror records the
appliance writes itself; a producer's new item under such a NAME is refused, so it can never
take over (or be taken for) a local job."""


def reserved_job_id_problem(job_id: str) -> str | None:
    """Why a producer may not use ``job_id`` for a new KASSAJOB item, or None."""
    for prefix in LOCAL_JOB_PREFIXES:
        if job_id.startswith(prefix):
            return (
                f"NAME (the job id) {shorten(job_id, 60)} starts with {prefix!r}, which is "
                f"reserved for jobs that arrive by other channels (LAN API, relay); "
                "expected another job id"
            )
    return None


def job_id_problem(job_id: str) -> str | None:
    """Why an item's NAME cannot be a job id (for the journal, the CLI, the logs), or None."""
    what = "NAME (the job id)"
    if not job_id:
        return f"{what} is empty; expected the job's id"
    if len(job_id) > MAX_JOB_ID_LENGTH:
        return (
            f"{what} has {len(job_id):,} characters ({shorten(job_id, 40)}); "
            f"expected at most {MAX_JOB_ID_LENGTH}"
        )
    if not job_id.isprintable() or any(0xD800 <= ord(c) <= 0xDFFF for c in job_id):
        return (
            f"{what} {shorten(job_id, 60)} holds a control character or an invalid "
            "character; expected printable text"
        )
    return None


def parse_stored(task_text: str, reply_text: str) -> ParsedJob | Refusal:
    """TASK must be a JSON object (an Atol task) within the input limits; REPLY is optional
    and kept as an object (``{"value": …}`` for a JSON scalar, ``{"raw": text}`` for text
    that is not JSON)."""
    try:
        task = decode_json_text(task_text, "TASK")
    except InputRejected as error:
        return Refusal("invalid-task", _with_expectation(error, "an Atol JSON task object"))
    if not isinstance(task, dict):
        return Refusal(
            "invalid-task", f"TASK must be a JSON object (an Atol task), got {json_kind(task)}"
        )
    if not reply_text:
        return ParsedJob(task, None)
    try:
        reply = decode_json_text(reply_text, "REPLY")
    except InputRejected as error:
        if reply_text.lstrip().startswith(("{", "[")):
            return Refusal("invalid-reply", _with_expectation(error, "a JSON object"))
        try:
            check_value(reply_text, "REPLY")
        except InputRejected as problem:
            return Refusal("invalid-reply", str(problem))
        return ParsedJob(task, {"raw": reply_text})
    return ParsedJob(task, reply if isinstance(reply, dict) else {"value": reply})


def _with_expectation(error: InputRejected, expected: str) -> str:
    message = str(error)
    return message if "expected" in message else f"{message}; expected {expected}"
