"""The values Atol accepts for enumerated receipt fields (atol-notes §1.3).

Owns the allowed values of tax and taxation types (with the obsolete ones and why they
are refused), payment types, methods and objects, FFD 1.2 measurement units, correction
types, text alignment and wrapping, and barcode symbologies. The checks that use them are
in :mod:`kassa_appliance.fiscal.receipt_rules`, which re-exports these names.
"""

from __future__ import annotations

from kassa_appliance.registers.base import IMC_TYPES

__all__ = [
    "AGENT_TYPES",
    "ALIGNMENTS",
    "BARCODE_TYPES",
    "CORRECTION_TYPES",
    "ESTIMATED_STATUSES",
    "IMC_TYPES",
    "MARKING_CODE_TYPES",
    "MEASUREMENT_UNITS",
    "NOMENCLATURE_TYPES",
    "OBSOLETE_TAXATION_TYPES",
    "OBSOLETE_TAX_TYPES",
    "PAYMENT_METHODS",
    "PAYMENT_METHOD_CODES",
    "PAYMENT_OBJECTS",
    "PAYMENT_OBJECT_ALIASES",
    "PAYMENT_OBJECT_CODES",
    "PAYMENT_TYPES",
    "PAYMENT_TYPE_CODES",
    "TAXATION_TYPES",
    "TAX_RATE_CODES",
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
TAX_RATE_CODES: dict[str, str] = {
    "0": "vat0",
    "5": "vat5",
    "7": "vat7",
    "10": "vat10",
    "20": "vat20",
    "22": "vat22",
    "105": "vat105",
    "107": "vat107",
    "110": "vat110",
    "120": "vat120",
    "122": "vat122",
    "18": "vat18",
    "118": "vat118",
}
"""``tax.type`` given as its rate: the driver's TAX_TYPES table has the keys "0", "10", "20",
"110", "120" (and "18", "118") next to the names (AlexanderYekat/atolexamplesjson,
myscripts_utils.js); the rates of 2025–2026 are taken the same way. Normalised to the name."""
TAXATION_TYPES = ("osn", "usnIncome", "usnIncomeOutcome", "esn", "patent")
OBSOLETE_TAXATION_TYPES = {"envd": "UTII (envd) was abolished on 2021-01-01"}
PAYMENT_TYPES = ("cash", "electronically", "prepaid", "credit", "other")
PAYMENT_TYPE_CODES: dict[int, str] = {
    0: "cash",
    1: "electronically",
    2: "prepaid",
    3: "credit",
    4: "other",
    **{code: str(code) for code in range(5, 10)},
}
"""Payment types by code (tags 1031/1081/1215/1216/1217 and the custom types 5–9). The driver
takes a name or anything ``parseInt`` reads; 5–9 have no name and go to it as "5"…"9"."""
PAYMENT_METHODS = (
    "fullPrepayment",
    "prepayment",
    "advance",
    "fullPayment",
    "partialPayment",
    "credit",
    "creditPayment",
)
PAYMENT_METHOD_CODES: dict[int, str] = {
    code: name for code, name in enumerate(PAYMENT_METHODS, start=1)
}
"""Tag 1214 codes → names (myscripts_utils.js PAYMENT_METHODS)."""
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
PAYMENT_OBJECT_CODES: dict[int, str] = {
    **{code: name for code, name in enumerate(PAYMENT_OBJECTS[:16], start=1)},
    17: "merchantTax",
    18: "resortFee",
    19: "deposit",
    20: "consumption",
    21: "soleProprietorCPIContributions",
    22: "cpiContributions",
    23: "soleProprietorCMIContributions",
    24: "cmiContributions",
    25: "csiContributions",
    26: "casinoPayment",
    27: "fundsIssuance",
    30: "exciseWithoutMarking",
    31: "exciseWithMarking",
    32: "commodityWithoutMarking",
    33: "commodityWithMarking",
}
"""Tag 1212 codes → names (myscripts_utils.js PAYMENT_OBJECTS; 16 is insuranceContributions)."""
PAYMENT_OBJECT_ALIASES: dict[str, str] = {"pay": "composite"}
"""Other names the driver takes for the same code (``pay`` is 12, FFD 1.2's name)."""
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
    "CODE39_EXTENDED",
)
"""Printable barcode symbologies: exactly the list of the driver's validateBarcodeItem
(AlexanderYekat/atolexamplesjson, myscripts_validators.js)."""
AGENT_TYPES = (
    "bankPayingAgent",
    "bankPayingSubagent",
    "payingAgent",
    "payingSubagent",
    "attorney",
    "commissionAgent",
    "another",
)
"""``agentInfo.agents[]`` values (tags 1057/1222; myscripts_validators.js validateAgentInfo)."""

ESTIMATED_STATUSES = (
    "itemPieceSold",
    "itemDryForSale",
    "itemPieceReturn",
    "itemDryReturn",
    "itemStatusUnchanged",
)
"""``imcParams.itemEstimatedStatus`` (tag 2003; MARKING_ESTIMATED_STATUS), or a number."""
MARKING_CODE_TYPES = ("other", "egais20", "egais30")
"""``markingCode.type`` (FFD 1.05 marking; MARKING_CODE_TYPES)."""
NOMENCLATURE_TYPES = ("furs", "medicines", "tobacco", "shoes")
"""``nomenclatureCode.type`` when the code is given as an object (tag 1162)."""
