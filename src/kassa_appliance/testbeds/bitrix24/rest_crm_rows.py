"""Product rows of the emulated CRM (``crm.item.productrow.*``): the stored row and the
prices Bitrix24 derives from what a client sends (b24restdocs
``crm/data-types.md#crm_item_product_row``; the docs' example — price 90000, 10 % off,
VAT 10 % included — gives priceExclusive 81818.18, priceNetto 90909.09, priceBrutto 100000)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def number(value: Decimal) -> float | int:
    """A JSON number as the portal writes it (90000, 81818.18)."""
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass
class ProductRow:
    id: int
    owner_id: int
    product_name: str
    price: Decimal
    quantity: Decimal
    discount_type_id: int = 2
    discount_rate: Decimal = Decimal(0)
    discount_sum: Decimal = Decimal(0)
    tax_rate: Decimal | None = None
    tax_included: str = "Y"
    measure_code: int = 796
    measure_name: str = "pcs"
    type: int = 1
    product_id: int = 0
    sort: int = 10

    def as_json(self) -> dict[str, Any]:
        rate = self.tax_rate or Decimal(0)
        exclusive = self.price / (1 + rate / 100)
        netto = exclusive + self.discount_sum
        return {
            "id": self.id,
            "ownerId": self.owner_id,
            "ownerType": "D",
            "productId": self.product_id,
            "productName": self.product_name,
            "price": number(self.price),
            "priceAccount": number(self.price),
            "priceExclusive": number(money(exclusive)),
            "priceNetto": number(money(netto)),
            "priceBrutto": number(money(netto * (1 + rate / 100))),
            "quantity": number(self.quantity),
            "discountTypeId": self.discount_type_id,
            "discountRate": number(self.discount_rate),
            "discountSum": number(money(self.discount_sum)),
            "taxRate": None if self.tax_rate is None else number(self.tax_rate),
            "taxIncluded": self.tax_included,
            "customized": "Y",
            "measureCode": self.measure_code,
            "measureName": self.measure_name,
            "sort": self.sort,
            "xmlId": None,
            "type": self.type,
            "storeId": None,
        }


def product_row(row_id: int, deal_id: int, row: dict[str, Any], *, sort: int) -> ProductRow:
    """A row from ``crm.item.productrow`` fields: ``price`` (final), or
    ``priceExclusive`` (+ ``taxRate``); a discount as ``discountSum`` per unit
    (``discountTypeId`` 1) or ``discountRate`` % (2) of ``priceNetto``."""
    rate = None if row.get("taxRate") in (None, "", False) else Decimal(str(row["taxRate"]))
    factor = 1 + (rate or Decimal(0)) / 100
    discount_type = int(row.get("discountTypeId") or 2)
    discount_rate = Decimal(str(row.get("discountRate") or 0))
    discount_sum = Decimal(str(row.get("discountSum") or 0))
    if "price" in row and row["price"] not in (None, ""):
        price = Decimal(str(row["price"]))
    else:
        exclusive = Decimal(str(row.get("priceExclusive") or 0))
        price = money(exclusive * factor)
    exclusive = price / factor
    if discount_type == 2 and discount_rate:
        netto = exclusive / (1 - discount_rate / 100)
        discount_sum = netto - exclusive
    elif discount_sum and exclusive:
        discount_rate = money(discount_sum / (exclusive + discount_sum) * 100)
    return ProductRow(
        row_id,
        deal_id,
        str(row.get("productName") or "Item"),
        price,
        Decimal(str(row.get("quantity") or 1)),
        discount_type,
        discount_rate,
        discount_sum,
        rate,
        "Y" if str(row.get("taxIncluded") or "Y").upper() == "Y" else "N",
        int(row.get("measureCode") or 796),
        str(row.get("measureName") or "pcs"),
        int(row.get("type") or 1),
        int(row.get("productId") or 0),
        sort,
    )
