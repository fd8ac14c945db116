"""How much an Atol receipt task may hold: counts, text lengths, decimals and magnitudes.

Owns the ``MAX_*`` limits (the fiscal document size, the FFD field lengths), the decimal
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
    "MAX_DOCUMENT_BYTES",
    "MAX_MACHINE_NUMBER_LENGTH",
    "MAX_MONEY",
    "MAX_NAME_LENGTH",
    "MAX_OPERATOR_NAME_LENGTH",
    "MAX_QUANTITY",
    "MAX_TEXT_LENGTH",
    "MAX_UNIT_LENGTH",
    "MONEY_PLACES",
    "QUANTITY_PLACES",
]

MAX_DOCUMENT_BYTES = 32768
"""The driver's limit on one receipt as a fiscal document: ``getMaxSize()`` in the driver's
receipt script (AlexanderYekat/atolexamplesjson, myscripts_base_receipt.js), which refuses a
task whose estimated size exceeds it ("Размер чека: N байт. Допустимый размер чека не более
32768 байт"). The estimate is :mod:`kassa_appliance.fiscal.receipt_size`. There is no fixed
number of positions: it is how many fit."""

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
QUANTITY_PLACES = 6
"""The driver encodes a quantity with up to 6 decimals (its size estimate divides it by 10⁶,
myscripts_base_receipt.js ``getFloatNumSize``); finer values are rounded, as it rounds them."""
MAX_MONEY = Decimal("9999999999.99")
"""Upper bound for any sum. Besides being far above any real receipt, it keeps every money
value at ≤ 12 significant digits, so the float that goes to the driver converts back to the
same Decimal exactly (floats round-trip up to 15 significant digits)."""
MAX_QUANTITY = Decimal("99999.999999")
"""Upper bound for a quantity; ≤ 11 significant digits, exact as a float for the same reason."""
