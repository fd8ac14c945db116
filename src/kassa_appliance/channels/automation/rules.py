"""Automation rules: when a deal or a payment prints a receipt, where and how.

A rule set is the JSON object ``{"rules": [rule, …]}`` (docs/automation.md, "Rules").
One rule::

    {"id": "won", "kassa": "shop-1",
     "trigger": {"kind": "deal_stage", "category_id": 0, "stage_id": "WON",
                 "return_stage_id": "LOSE"},
     "receipt_type": "full_payment", "payment_type": "electronically",
     "taxation": "usnIncome", "vat_default": "none", "electronic": true,
     "payments_address": "https://shop.example.ru"}

or a payment trigger ``{"kind": "payment_paid", "category_id": null}`` (a payment of a
deal marked paid). Every field is checked here (pydantic, strict, unknown keys refused) so a
bad rule set is refused whole, with one line per problem naming the field, and the rules
in force stay as they were.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kassa_appliance.fiscal.receipt_enums import PAYMENT_TYPES, TAXATION_TYPES
from kassa_appliance.fiscal.receipt_values import parse_tax_type
from kassa_appliance.inputs import InputRejected, decode_json_text, shorten

MAX_RULES = 50
RULE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,23}$")
STAGE_ID = re.compile(r"^(C(\d+):)?[A-Z0-9_]{1,40}$")
ReceiptType = Literal["full_payment", "full_prepayment", "prepayment", "advance", "credit"]
PAYMENT_METHOD: dict[str, str] = {
    "full_payment": "fullPayment",
    "full_prepayment": "fullPrepayment",
    "prepayment": "prepayment",
    "advance": "advance",
    "credit": "credit",
}
"""Receipt type → Atol ``paymentMethod`` (tag 1214)."""


class RulesRefused(ValueError):
    """The rule set is not taken; ``str()`` has one line per problem, field first."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _stage_problem(stage_id: str, category_id: int) -> str | None:
    match = STAGE_ID.match(stage_id)
    if match is None:
        return (
            f"{shorten(stage_id, 50)!r} is not a stage id; expected e.g. WON in the default "
            "pipeline or C1:WON in pipeline 1 (crm.status.list STATUS_ID)"
        )
    prefix = int(match.group(2)) if match.group(2) is not None else 0
    if prefix != category_id:
        expected = stage_id.split(":")[-1]
        wanted = expected if category_id == 0 else f"C{category_id}:{expected}"
        return (
            f"{stage_id} is a stage of pipeline {prefix}, not of pipeline {category_id}; "
            f"expected {wanted}"
        )
    return None


class DealStageTrigger(_Strict):
    kind: Literal["deal_stage"]
    category_id: Annotated[int, Field(ge=0)] = 0
    """The pipeline (``crm.category.list`` id; 0 = the default one)."""
    stage_id: str
    """Entering this stage prints the receipt."""
    return_stage_id: str | None = None
    """Entering this stage after the receipt prints a return (sellReturn)."""

    @model_validator(mode="after")
    def _stages_of_the_pipeline(self) -> DealStageTrigger:
        problems = []
        for name in ("stage_id", "return_stage_id"):
            value = getattr(self, name)
            if value is not None and (problem := _stage_problem(value, self.category_id)):
                problems.append(f"{name}: {problem}")
        if self.return_stage_id is not None and self.return_stage_id == self.stage_id:
            problems.append("return_stage_id: is the stage that prints; expected another stage")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class PaymentTrigger(_Strict):
    kind: Literal["payment_paid"]
    category_id: Annotated[int, Field(ge=0)] | None = None
    """Only payments of deals in this pipeline (None: any)."""


class Rule(_Strict):
    id: str
    trigger: Annotated[DealStageTrigger | PaymentTrigger, Field(discriminator="kind")]
    kassa: Annotated[str, Field(min_length=1, max_length=64)]
    receipt_type: ReceiptType = "full_payment"
    payment_type: str = "electronically"
    taxation: str | None = None
    vat_default: str = "none"
    """The VAT of a product row without a tax rate (``none``, ``vat0``, ``vat20`` …)."""
    electronic: bool = True
    """True: the receipt goes to the client's e-mail or phone (refused without one);
    False: paper."""
    payments_address: Annotated[str, Field(max_length=256)] | None = None
    """Tag 1187, the shop's site for electronic receipts."""

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not RULE_ID.match(value):
            raise ValueError(
                f"{shorten(value, 40)!r} is not a rule id; expected 1–24 of a-z, 0-9, _ and -, "
                "starting with a letter or digit"
            )
        return value

    @field_validator("payment_type")
    @classmethod
    def _payment_type(cls, value: str) -> str:
        if value not in PAYMENT_TYPES:
            raise ValueError(f"{shorten(value, 40)!r}; expected one of {', '.join(PAYMENT_TYPES)}")
        return value

    @field_validator("taxation")
    @classmethod
    def _taxation(cls, value: str | None) -> str | None:
        if value is not None and value not in TAXATION_TYPES:
            raise ValueError(f"{shorten(value, 40)!r}; expected one of {', '.join(TAXATION_TYPES)}")
        return value

    @field_validator("vat_default")
    @classmethod
    def _vat(cls, value: str) -> str:
        return parse_tax_type(value)

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.receipt_type == "credit" and self.payment_type != "credit":
            raise ValueError(
                "payment_type: a credit receipt (goods handed over, paid later) is paid "
                f"with payment type credit, not {self.payment_type}; expected credit"
            )
        return self

    @property
    def payment_method(self) -> str:
        return PAYMENT_METHOD[self.receipt_type]


class RuleSet(_Strict):
    rules: Annotated[list[Rule], Field(max_length=MAX_RULES)] = []

    @model_validator(mode="after")
    def _unique_ids(self) -> RuleSet:
        seen: set[str] = set()
        for index, rule in enumerate(self.rules):
            if rule.id in seen:
                raise ValueError(f"rules[{index}].id: {rule.id} is used twice; expected unique ids")
            seen.add(rule.id)
        return self

    def stage_rules(self) -> list[Rule]:
        return [r for r in self.rules if isinstance(r.trigger, DealStageTrigger)]

    def payment_rules(self) -> list[Rule]:
        return [r for r in self.rules if isinstance(r.trigger, PaymentTrigger)]


def _where(location: tuple[int | str, ...]) -> str:
    out = ""
    for part in location:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("deal_stage", "payment_paid", "function-after"):
            continue  # pydantic's discriminator/validator step, not a field
        else:
            out += f".{part}" if out else str(part)
    return out or "rules"


def describe(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        message = str(problem.get("msg", "")).removeprefix("Value error, ")
        if problem.get("type") == "extra_forbidden":
            message = "is not a rule field; check its spelling (docs/automation.md)"
        lines.append(f"{_where(tuple(problem.get('loc', ())))}: {message}")
    return "\n".join(lines)


def parse_rules(value: Any) -> RuleSet:
    """A decoded rule-set object → :class:`RuleSet`, or :class:`RulesRefused`."""
    if not isinstance(value, dict):
        raise RulesRefused('rules: expected a JSON object {"rules": [...]}')
    try:
        return RuleSet.model_validate(value)
    except ValidationError as error:
        raise RulesRefused(describe(error)) from None


def parse_rules_text(text: str) -> RuleSet:
    """The SETTINGS text of the rules item → :class:`RuleSet`, or :class:`RulesRefused`."""
    if not text.strip():
        return RuleSet()
    try:
        value = decode_json_text(text, "SETTINGS")
    except InputRejected as error:
        raise RulesRefused(f'{error}; expected a JSON object {{"rules": [...]}}') from None
    return parse_rules(value)
