"""Valid Atol tasks shared by the receipt tests (no tests here), built fresh per call so tests
can edit them."""

from __future__ import annotations

import json
from typing import Any

# atol-notes §1.4, verbatim (values illustrative; the operator INN has a valid check digit).
SAMPLE_SELL_JSON = """
{
  "type": "sell",
  "taxationType": "usnIncome",
  "electronically": false,
  "ignoreNonFiscalPrintErrors": false,
  "paymentsAddress": "https://shop.example.ru",
  "operator": { "name": "Иванов И.И.", "vatin": "123654789507" },
  "clientInfo": { "emailOrPhone": "+79161234567" },
  "items": [
    {
      "type": "position",
      "name": "Консультация",
      "price": 1500.00,
      "quantity": 1,
      "amount": 1500.00,
      "measurementUnit": "piece",
      "paymentMethod": "fullPayment",
      "paymentObject": "service",
      "tax": { "type": "none" }
    },
    { "type": "text", "text": "Заказ Bitrix24 #4512", "alignment": "center" }
  ],
  "payments": [ { "type": "electronically", "sum": 1500.00 } ],
  "total": 1500.00
}
"""


def sample_sell() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SAMPLE_SELL_JSON)
    return data


def position(**fields: Any) -> dict[str, Any]:
    """A valid position: 2 × 50.00 = 100.00, VAT 20 %."""
    item: dict[str, Any] = {
        "type": "position",
        "name": "Товар",
        "price": 50.0,
        "quantity": 2,
        "amount": 100.0,
        "tax": {"type": "vat20"},
    }
    item.update(fields)
    return item


def receipt(**fields: Any) -> dict[str, Any]:
    """A valid sell of one position (100.00) paid in cash."""
    task: dict[str, Any] = {
        "type": "sell",
        "items": [position()],
        "payments": [{"type": "cash", "sum": 100.0}],
    }
    task.update(fields)
    return task


def correction(**fields: Any) -> dict[str, Any]:
    task = receipt(
        type="sellCorrection",
        correctionType="self",
        correctionBaseDate="2025.12.01",
        correctionBaseNumber="",
    )
    task.update(fields)
    return task
