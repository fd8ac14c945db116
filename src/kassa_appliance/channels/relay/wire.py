"""The wire contract between ``kassa-relay`` and the appliance, on NATS JetStream.

Pure names and shapes, importing nothing of ours, so that both sides (the relay service in
``kassa_relay`` and the consumer in this package) use one definition:

* stream :data:`JOBS_STREAM` holds every check as one message on
  ``jobs.<tenant>.<kassa>`` (:func:`job_subject`), de-duplicated by ``Nats-Msg-Id`` = the
  check id; work-queue retention: a message leaves the stream when its kassa acked it;
* one durable pull consumer per kassa (:func:`durable_name`), created by the relay when the
  cashbox is registered, filtered to that kassa's subject;
* key-value bucket :data:`RESULTS_BUCKET`: one key per check, ``<tenant>.<kassa>.<digest>``
  (:func:`results_key`) — ``wait`` written by the relay when it accepted the check, then
  ``done``/``error`` written by the appliance (:func:`result_record`);
* key-value bucket :data:`REGISTRY_BUCKET`: the tenants and cashboxes (the relay only);
* each kassa's NATS user may use only its own inbox prefix (:func:`inbox_prefix`), its own
  consumer, and its own keys of the results bucket (see ``kassa_relay.nats_users``).

Tenant ids are ``[a-z0-9-]`` (no underscore) and kassa ids ``[A-Za-z0-9_-]``, so the names
joined with ``_`` below cannot collide between two (tenant, kassa) pairs.
"""

from __future__ import annotations

import re
from typing import Any

WIRE_VERSION = 1
JOBS_STREAM = "KASSA_JOBS"
JOBS_SUBJECT_ROOT = "jobs"
RESULTS_BUCKET = "kassa_results"
RESULTS_STREAM = f"KV_{RESULTS_BUCKET}"
REGISTRY_BUCKET = "kassa_registry"
SOURCE = "relay"
"""The journal's ``source`` of a job that came through the relay."""

TENANT_ID = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?")
KASSA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
DIGEST = re.compile(r"[0-9a-f]{32}")

STATUS_WAIT = "wait"
STATUS_DONE = "done"
STATUS_ERROR = "error"

FISCAL_FIELDS = (
    "REG_NUMBER_KKT",
    "FISCAL_DOC_ATTR",
    "FISCAL_DOC_NUMBER",
    "FISCAL_RECEIPT_NUMBER",
    "FN_NUMBER",
    "SHIFT_NUMBER",
    "PRINT_END_TIME",
)
"""What Bitrix24's CHECK_URL DONE answer and ``sale.cashbox.check.apply`` carry."""


def job_subject(tenant: str, kassa: str) -> str:
    return f"{JOBS_SUBJECT_ROOT}.{tenant}.{kassa}"


def durable_name(tenant: str, kassa: str) -> str:
    return f"kassa_{tenant}_{kassa}"


def inbox_prefix(tenant: str, kassa: str) -> str:
    return f"_INBOX_{tenant}_{kassa}"


def results_key(tenant: str, kassa: str, digest: str) -> str:
    return f"{tenant}.{kassa}.{digest}"


def results_subject(key: str) -> str:
    """The stream subject of a results key (what a kassa's user may publish to)."""
    return f"$KV.{RESULTS_BUCKET}.{key}"


def direct_get_subject(key: str) -> str:
    """The JetStream direct-get request for a results key (no stream info needed)."""
    return f"$JS.API.DIRECT.GET.{RESULTS_STREAM}.{results_subject(key)}"


def fiscal_fields(fiscal_params: dict[str, Any], printed_at: float) -> dict[str, str]:
    """The register's ``fiscalParams`` as Bitrix24's fiscal fields (all text)."""
    return {
        "REG_NUMBER_KKT": str(fiscal_params.get("registrationNumber", "")),
        "FISCAL_DOC_ATTR": str(fiscal_params.get("fiscalDocumentSign", "")),
        "FISCAL_DOC_NUMBER": str(fiscal_params.get("fiscalDocumentNumber", "")),
        "FISCAL_RECEIPT_NUMBER": str(fiscal_params.get("fiscalReceiptNumber", "")),
        "FN_NUMBER": str(fiscal_params.get("fnNumber", "")),
        "SHIFT_NUMBER": str(fiscal_params.get("shiftNumber", "")),
        "PRINT_END_TIME": str(int(printed_at)),
    }


def result_record(
    *,
    check: str,
    status: str,
    fiscal_params: dict[str, Any] | None = None,
    printed_at: float | None = None,
    qr: str | None = None,
    error: str | None = None,
    callback_url: str | None = None,
) -> dict[str, Any]:
    """One value of the results bucket."""
    record: dict[str, Any] = {"v": WIRE_VERSION, "check": check, "status": status}
    if fiscal_params is not None:
        record["fiscalParams"] = fiscal_params
        record["fiscal"] = fiscal_fields(fiscal_params, printed_at or 0.0)
    if qr is not None:
        record["qr"] = qr
    if error is not None:
        record["error"] = error
    if callback_url:
        record["callback_url"] = callback_url
    return record
