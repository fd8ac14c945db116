"""How much an Atol receipt task may hold: counts, text lengths, decimals and magnitudes.

Owns the ``MAX_*`` limits (positions, items, payments, the FFD field lengths), the decimal
places of money and quantities and their upper bounds. The checks that enforce them are in
:mod:`kassa_appliance.fiscal.receipt_rules` (which re-exports these names) and the models in
:mod:`kassa_appliance.fiscal.receipt_items`.
"""

from __future__ import annotations

from decimal import Decimal

__all__ = [
    "MAX_ADDRESS_LENGTH",
    "MAX_BARCODE_LENGTH",
    "MAX_CLIENT_NAME_LENGTH",
    "MAX_CONTACT_LENGTH",
    "MAX_CORRECTION_BASE_NUMBER_LENGTH",
    "MAX_ITEMS",
    "MAX_MACHINE_NUMBER_LENGTH",
    "MAX_MONEY",
    "MAX_NAME_LENGTH",
    "MAX_OPERATOR_NAME_LENGTH",
    "MAX_PAYMENTS",
    "MAX_POSITIONS",
    "MAX_QUANTITY",
    "MAX_TEXT_LENGTH",
    "MAX_UNIT_LENGTH",
    "MONEY_PLACES",
    "QUANTITY_PLACES",
]

MAX_POSITIONS = 100
"""Positions (``type: "position"`` items) per receipt.

Each position becomes a tag-1059 structure in the fiscal document (name up to 128 bytes in
cp866 plus price, quantity, sum, VAT, unit, method and object: up to ~300 bytes). The FN
caps the size of one fiscal document, and the register has to print every line while the
receipt is open; 100 positions keeps a receipt far below both limits and well inside one
paper roll, and no Bitrix24 order we expect comes close. Split bigger orders."""

MAX_ITEMS = 200
"""All items (positions plus non-fiscal text/barcode lines) in one receipt: the same paper
and print-time budget as :data:`MAX_POSITIONS`, leaving room for a text line per position."""

MAX_PAYMENTS = 10
"""Payment entries per receipt. Atol knows five payment types; ten leaves room for split
payments of one type while keeping a malformed task from growing without bound."""

MAX_NAME_LENGTH = 128
"""Position name, FFD tag 1030 (128 characters)."""
MAX_OPERATOR_NAME_LENGTH = 64
"""Cashier name, FFD tag 1021 (64 characters)."""
MAX_ADDRESS_LENGTH = 256
"""``paymentsAddress`` (tag 1009) and ``paymentsPlace`` (tag 1187), 256 characters each."""
MAX_TEXT_LENGTH = 256
"""One non-fiscal text item. Atol wraps long lines itself; 256 bounds the paper spent."""
MAX_CONTACT_LENGTH = 64
"""Buyer e-mail or phone, FFD tag 1008 (64 characters)."""
MAX_CLIENT_NAME_LENGTH = 256
"""Buyer name, FFD tag 1227 (256 characters)."""
MAX_MACHINE_NUMBER_LENGTH = 20
"""Automatic device number, FFD tag 1036 (20 characters)."""
MAX_CORRECTION_BASE_NUMBER_LENGTH = 32
"""Number of the tax authority's order behind a correction, FFD tag 1179 (32 characters)."""
MAX_UNIT_LENGTH = 16
"""Free-text measurement unit, FFD 1.05 tag 1197 (16 characters)."""
MAX_BARCODE_LENGTH = 1024
"""Sanity cap for a printed barcode's content (a QR code holds at most ~3 KB anyway)."""

MONEY_PLACES = 2
QUANTITY_PLACES = 3
MAX_MONEY = Decimal("9999999999.99")
"""Upper bound for any sum. Besides being far above any real receipt, it keeps every money
value at ≤ 12 significant digits, so the float that goes to the driver converts back to the
same Decimal exactly (floats round-trip up to 15 significant digits)."""
MAX_QUANTITY = Decimal("9999999.999")
"""Upper bound for a quantity; ≤ 10 significant digits, exact as a float for the same reason."""
