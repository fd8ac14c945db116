"""Atol tasks the tests share."""

from __future__ import annotations

from typing import Any

OPERATOR = {"name": "Кассир Тестов", "vatin": "500100732259"}


def sell(total: str = "150.00", *, tax: str = "vat22", name: str = "Чай") -> dict[str, Any]:
    """A one-position cash sell of ``name`` for ``total`` roubles, taxed ``tax``."""
    return {
        "type": "sell",
        "operator": OPERATOR,
        "items": [
            {
                "type": "position",
                "name": name,
                "price": float(total),
                "quantity": 1,
                "amount": float(total),
                "tax": {"type": tax},
                "paymentMethod": "fullPayment",
                "paymentObject": "commodity",
            }
        ],
        "payments": [{"type": "cash", "sum": float(total)}],
        "total": float(total),
    }
