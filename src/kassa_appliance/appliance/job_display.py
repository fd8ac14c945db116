"""How a job looks to a person or a script: the CLI's and the demos' view of the journal.

Owns :func:`describe_job` (a few human lines: state, error, what it waits on, the fiscal
block, the QR text), :func:`describe_fiscal_params` (one line for a receipt's fiscal
block) and :func:`job_as_json` (the stable JSON shape of ``--json`` output).
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from kassa_appliance.fiscal.journal import Job


def describe_job(job: Job) -> str:
    lines = [f"job {job.id}: {job.state.value}"]
    if job.error_code:
        lines.append(f"  error {job.error_code}: {job.error_message}")
    if job.wait_reason and not job.state.is_final:
        lines.append(f"  waiting: {job.wait_reason}")
    params = (job.result or {}).get("fiscalParams")
    if isinstance(params, dict):
        lines.append("  " + describe_fiscal_params(params))
    elif job.result:
        lines.append("  " + json.dumps(job.result, ensure_ascii=False))
    if job.qr:
        lines.append(f"  QR: {job.qr}")
    return "\n".join(lines)


def describe_fiscal_params(params: dict[str, Any]) -> str:
    """One line with what a receipt's fiscal block says."""
    return "ФД {fd}  ФП {fp}  ФН {fn}  смена {shift}  чек {receipt}  сумма {total}".format(
        fd=params.get("fiscalDocumentNumber"),
        fp=params.get("fiscalDocumentSign"),
        fn=params.get("fnNumber"),
        shift=params.get("shiftNumber"),
        receipt=params.get("fiscalReceiptNumber", "-"),
        total=_money(params.get("total")),
    )


def _money(value: object) -> str:
    """Driver JSON carries money as numbers; show it the way a receipt does."""
    if value is None:
        return "-"
    return f"{Decimal(str(value)):.2f}"


def job_as_json(job: Job) -> dict[str, Any]:
    return {
        "id": job.id,
        "state": job.state.value,
        "source": job.source,
        "type": job.task_type,
        "result": job.result,
        "qr": job.qr,
        "error": None
        if job.error_code is None
        else {"code": job.error_code, "message": job.error_message},
        "waiting": job.wait_reason,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
    }
