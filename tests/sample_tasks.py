"""Atol tasks the tests share."""

from __future__ import annotations

from typing import Any

OPERATOR = {"name": "Кассир Тестов", "vatin": "500100732259"}


def sell(total: str = "150.00") -> dict[str, Any]:
    """A one-position cash sell for ``total`` roubles (VAT 22 %)."""
    return {
        "type": "sell",
        "operator": OPERATOR,
        "items": [
            {
                "type": "position",
                "name": "Чай",
                "price": float(total),
                "quantity": 1,
                "amount": float(total),
                "tax": {"type": "vat22"},
                "paymentMethod": "fullPayment",
                "paymentObject": "commodity",
            }
        ],
        "payments": [{"type": "cash", "sum": float(total)}],
        "total": float(total),
    }
