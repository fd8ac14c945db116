"""The values Atol accepts for enumerated receipt fields (atol-notes §1.3).

Owns the allowed values of tax and taxation types (with the obsolete ones and why they
are refused), payment types, methods and objects, FFD 1.2 measurement units, correction
types, text alignment and wrapping, and barcode symbologies. The checks that use them are
in :mod:`kassa_appliance.fiscal.receipt_rules`, which re-exports these names.
"""

from __future__ import annotations

__all__ = [
    "ALIGNMENTS",
    "BARCODE_TYPES",
    "CORRECTION_TYPES",
    "MEASUREMENT_UNITS",
    "OBSOLETE_TAXATION_TYPES",
    "OBSOLETE_TAX_TYPES",
    "PAYMENT_METHODS",
    "PAYMENT_OBJECTS",
    "PAYMENT_TYPES",
    "TAXATION_TYPES",
    "TAX_TYPES",
    "WRAP_MODES",
]

TAX_TYPES = (
    "none",
    "vat0",
    "vat5",
    "vat7",
    "vat10",
    "vat20",
    "vat22",
    "vat105",
    "vat107",
    "vat110",
    "vat120",
    "vat122",
)
OBSOLETE_TAX_TYPES = {
    "vat18": "VAT 18 % was replaced by 20 % on 2019-01-01",
    "vat118": "VAT 18/118 was replaced by 20/120 on 2019-01-01",
}
TAXATION_TYPES = ("osn", "usnIncome", "usnIncomeOutcome", "esn", "patent")
OBSOLETE_TAXATION_TYPES = {"envd": "UTII (envd) was abolished on 2021-01-01"}
PAYMENT_TYPES = ("cash", "electronically", "prepaid", "credit", "other")
PAYMENT_METHODS = (
    "fullPrepayment",
    "prepayment",
    "advance",
    "fullPayment",
    "partialPayment",
    "credit",
    "creditPayment",
)
PAYMENT_OBJECTS = (
    "commodity",
    "excise",
    "job",
    "service",
    "gamblingBet",
    "gamblingPrize",
    "lottery",
    "lotteryPrize",
    "intellectualActivity",
    "payment",
    "agentCommission",
    "composite",
    "another",
    "proprietaryLaw",
    "nonOperatingIncome",
    "insuranceContributions",
    "otherContributions",
    "merchantTax",
    "resortFee",
    "deposit",
    "consumption",
    "soleProprietorCPIContributions",
    "cpiContributions",
    "soleProprietorCMIContributions",
    "cmiContributions",
    "csiContributions",
    "casinoPayment",
    "fundsIssuance",
    "exciseWithoutMarking",
    "exciseWithMarking",
    "commodityWithoutMarking",
    "commodityWithMarking",
)
MEASUREMENT_UNITS: dict[str, int] = {
    "piece": 0,
    "gram": 10,
    "kilogram": 11,
    "ton": 12,
    "centimeter": 20,
    "decimeter": 21,
    "meter": 22,
    "squareCentimeter": 30,
    "squareDecimeter": 31,
    "squareMeter": 32,
    "milliliter": 40,
    "liter": 41,
    "cubicMeter": 42,
    "kilowattHour": 50,
    "gkal": 51,
    "day": 70,
    "hour": 71,
    "minute": 72,
    "second": 73,
    "kilobyte": 80,
    "megabyte": 81,
    "gigabyte": 82,
    "terabyte": 83,
    "otherUnits": 255,
}
"""FFD 1.2 measure of quantity (tag 2108): JSON name → code."""
CORRECTION_TYPES = ("self", "instruction")
ALIGNMENTS = ("left", "center", "right")
WRAP_MODES = ("none", "chars", "words")
BARCODE_TYPES = (
    "EAN8",
    "EAN13",
    "UPCA",
    "UPCE",
    "CODE39",
    "CODE93",
    "CODE128",
    "CODABAR",
    "ITF",
    "ITF14",
    "GS1_128",
    "QR",
    "PDF417",
    "AZTEC",
)
"""Printable barcode symbologies. From the DTO10 LIBFPTR_BT_* list as remembered; only
EAN8, EAN13, CODE128, GS1_128 and QR are confirmed in atol-notes §1.3."""
