"""The base of every Atol task model and the bridge from our value checks to pydantic.

:class:`AtolModel` is strict as the driver is (a number must be a JSON number, a flag
true/false: no ``"5"`` for 5, no ``"yes"`` for true), refuses unknown fields (a nested typo
such as ``operator.inn`` would otherwise be dropped; the top level is handled in
:mod:`kassa_appliance.fiscal.receipt_fields`) and drops the empty strings the driver ignores
(``Fptr.IGNORE_IF_EMPTY`` / ``mustStringOrMissingValues``), listed per model in
``empty_ignored``, so that they never reach the register.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, PlainValidator, model_validator
from pydantic_core import PydanticCustomError

from kassa_appliance.fiscal.receipt_errors import VALUE_ERROR_TYPE
from kassa_appliance.fiscal.receipt_rules import RuleError, check_choice, check_text

__all__ = ["AtolModel", "choice_rule", "text_rule", "value_rule"]


def value_rule(check: Callable[[object], Any]) -> PlainValidator:
    """A pydantic validator running one of our value checks with our message."""

    def validate(value: object) -> Any:
        try:
            return check(value)
        except RuleError as error:
            raise PydanticCustomError(VALUE_ERROR_TYPE, str(error)) from None

    return PlainValidator(validate)


def choice_rule(allowed: tuple[str, ...], obsolete: dict[str, str] | None = None) -> PlainValidator:
    return value_rule(partial(check_choice, allowed=allowed, obsolete=obsolete))


def text_rule(max_length: int, *, allow_empty: bool = False) -> PlainValidator:
    return value_rule(partial(check_text, max_length=max_length, allow_empty=allow_empty))


class AtolModel(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    empty_ignored: ClassVar[frozenset[str]] = frozenset()
    """Fields whose empty string the driver ignores: dropped before validation."""

    @model_validator(mode="before")
    @classmethod
    def _drop_ignored_empty(cls, data: Any) -> Any:
        if isinstance(data, dict) and cls.empty_ignored:
            return {
                key: value
                for key, value in data.items()
                if not (value == "" and key in cls.empty_ignored)
            }
        return data
