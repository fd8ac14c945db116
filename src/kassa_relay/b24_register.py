"""Registering the relay with a Bitrix24 portal: ``sale.cashbox.handler.add`` (with
``SUPPORTS_FFD105``) and ``sale.cashbox.add``, and reading ``catalog.vat.list`` for the
cashbox's VAT ids. Used by ``kassa-relay cashbox register --webhook`` (an incoming webhook
of a portal administrator with the ``cashbox``, ``sale`` and ``catalog`` scopes); without a
webhook the CLI prints the same parameters for the Kassa app to send.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import httpx

HANDLER_CODE = "kassa_relay"


def handler_params(public_url: str, tenant: str) -> dict[str, Any]:
    base = public_url.rstrip("/")
    return {
        "CODE": HANDLER_CODE,
        "NAME": "Касса магазина (kassa-relay)",
        "SORT": 100,
        "SUPPORTS_FFD105": "Y",
        "SETTINGS": {
            "PRINT_URL": f"{base}/b24/{tenant}/print",
            "CHECK_URL": f"{base}/b24/{tenant}/check",
            "HTTP_VERSION": "1.1",
            "CONFIG": {
                "RELAY": {
                    "LABEL": "kassa-relay",
                    "ITEMS": {
                        "KASSA": {"TYPE": "STRING", "LABEL": "Kassa id", "REQUIRED": "Y"},
                        "SECRET": {"TYPE": "STRING", "LABEL": "Secret", "REQUIRED": "Y"},
                    },
                }
            },
        },
    }


def cashbox_params(kassa: str, secret: str, email: str, name: str | None = None) -> dict[str, Any]:
    return {
        "NAME": name or f"Касса {kassa}",
        "REST_CODE": HANDLER_CODE,
        "EMAIL": email,
        "NUMBER_KKM": kassa,
        "ACTIVE": "Y",
        "SETTINGS": {"RELAY": {"KASSA": kassa, "SECRET": secret}},
    }


def vat_map(vats: list[dict[str, Any]]) -> dict[str, str]:
    """``catalog.vat.list``'s ``vats`` → {id: rate} (a null rate is "none")."""
    result: dict[str, str] = {}
    for vat in vats:
        rate = vat.get("rate")
        if rate in (None, ""):
            result[str(vat["id"])] = "none"
        else:
            result[str(vat["id"])] = format(Decimal(str(rate)).normalize(), "f")
    return result


def call(webhook: str, method: str, params: dict[str, Any]) -> Any:
    url = webhook.rstrip("/") + f"/{method}"
    response = httpx.post(url, json=params, timeout=30.0)
    body = response.json()
    if "error" in body:
        raise RuntimeError(f"{method}: {body.get('error')}: {body.get('error_description', '')}")
    return body.get("result")
