"""One error type for a bad task, and the translation of pydantic's errors into it.

Pydantic reports locations like ``('sell', 'items', 0, 'position', 'tax', 'type')`` (the
discriminator tags are part of the path) and generic English messages. The operator sees
our format instead: ``items[0].tax.type: 'vat18' is obsolete (...); expected one of ...`` —
the path as it appears in the task JSON, what is wrong, and what was expected. Pydantic's
own words (``Input should be a valid dictionary``, ``input_value=``) and Python's type
names never reach a message.

Messages are bounded, because they travel (journal, CLI, a Bitrix24 write-back batch the
portal refuses when it is too large): each problem is cut to :data:`MAX_PROBLEM_LENGTH`
with control characters escaped, offending values and field names are shortened, and the
rendered error lists the first :data:`MAX_PROBLEMS_SHOWN` problems, then how many more.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from kassa_appliance.fiscal.receipt_fields import (
    UNSUPPORTED_FIELDS,
    UNSUPPORTED_ITEM_TYPES,
    likely_field,
    unsupported_message,
)
from kassa_appliance.fiscal.receipt_rules import json_kind, one_of, shown
from kassa_appliance.inputs import format_location, shorten

VALUE_ERROR_TYPE = "kassa_value"
"""pydantic error type for a broken value rule; its message is ours, without the path."""
RULES_ERROR_TYPE = "kassa_rules"
"""pydantic error type carrying cross-field problems in ``ctx['problems']`` (full paths)."""

MAX_PROBLEM_LENGTH = 1024
"""Characters of one problem; the longest real one (a field of 32 allowed values) has ~700."""
MAX_PROBLEMS_SHOWN = 20
"""Problems listed in ``str(error)``; the rest are counted ("… and 3 more problems")."""

_MISSING_HINTS = {
    "correctionType": "expected self or instruction",
    "correctionBaseDate": "expected a date as yyyy.mm.dd",
    "imc": "expected the marking code (base64) when imcParams is given",
    "value": "expected the text of the requisite",
}


class TaskValidationError(ValueError):
    """An Atol task broke one or more rules; ``problems`` lists each one as
    ``"<path>: <what is wrong>; expected <what>"``, each at most :data:`MAX_PROBLEM_LENGTH`
    characters with control characters escaped."""

    def __init__(self, problems: Sequence[str]):
        self.problems: list[str] = [shorten(p, MAX_PROBLEM_LENGTH) for p in problems]
        super().__init__(self._render())

    def _render(self) -> str:
        if len(self.problems) == 1:
            return f"invalid task: {self.problems[0]}"
        lines = [f"  - {p}" for p in self.problems[:MAX_PROBLEMS_SHOWN]]
        hidden = len(self.problems) - MAX_PROBLEMS_SHOWN
        if hidden > 0:
            lines.append(f"  … and {hidden:,} more problem{'s' if hidden > 1 else ''}")
        return f"invalid task ({len(self.problems):,} problems):\n" + "\n".join(lines)

    def __str__(self) -> str:
        return self._render()


def format_path(loc: Sequence[str | int]) -> str:
    """``('items', 0, 'tax', 'type')`` → ``items[0].tax.type``; the empty path is ``task``.
    Field names are shortened and escaped (a key may be any text the sender chose)."""
    return format_location(tuple(loc)) or "task"


# --- walking the model tree along a pydantic location ---------------------------------------


def _leaves(annotation: Any) -> list[Any]:
    """The alternatives of an annotation: unwraps Annotated, Optional and unions."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _leaves(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [leaf for arg in typing.get_args(annotation) for leaf in _leaves(arg)]
    return [annotation]


def _models(annotation: Any) -> list[type[BaseModel]]:
    return [
        leaf
        for leaf in _leaves(annotation)
        if isinstance(leaf, type) and issubclass(leaf, BaseModel)
    ]


def tags_of(model: type[BaseModel]) -> list[str]:
    """The values a model accepts in its ``type`` field (its discriminator tags)."""
    field = model.model_fields.get("type")
    if field is None:
        return []
    return [
        value
        for leaf in _leaves(field.annotation)
        if typing.get_origin(leaf) is typing.Literal
        for value in typing.get_args(leaf)
    ]


def union_tags(annotation: Any) -> list[str]:
    return [tag for model in _models(annotation) for tag in tags_of(model)]


def models_by_tag(annotation: Any) -> dict[str, type[BaseModel]]:
    """The model of each discriminator tag of a union (``{"sell": ReceiptTask, ...}``)."""
    return {tag: model for model in _models(annotation) for tag in tags_of(model)}


def walk(root: Any, loc: Sequence[str | int]) -> tuple[list[str | int], Any]:
    """Follow ``loc`` from the ``root`` annotation. Returns the location without
    discriminator tags and the annotation found at its end (``None`` if it left the tree)."""
    path: list[str | int] = []
    annotation: Any = root
    for part in loc:
        if annotation is None:
            path.append(part)
            continue
        if isinstance(part, int):
            path.append(part)
            lists = [leaf for leaf in _leaves(annotation) if typing.get_origin(leaf) is list]
            annotation = typing.get_args(lists[0])[0] if lists else None
            continue
        models = _models(annotation)
        tagged = [m for m in models if part in tags_of(m)]
        if len(models) > 1 and tagged:
            annotation = tagged[0]  # a discriminator tag, not a field: not part of the path
            continue
        path.append(part)
        field = models[0].model_fields.get(part) if len(models) == 1 else None
        annotation = field.annotation if field is not None else None
    return path, annotation


# --- converting errors ---------------------------------------------------------------------


def _convert(error: Any, root: Any) -> list[str]:
    kind: str = error["type"]
    path, annotation = walk(root, error["loc"])
    where = format_path(path)
    value = error.get("input")
    if kind == RULES_ERROR_TYPE:
        prefix = format_path(path) if path else ""
        problems: list[str] = error["ctx"]["problems"]
        return [f"{prefix}.{p}" if prefix else p for p in problems]
    if kind == VALUE_ERROR_TYPE:
        return [f"{where}: {error['msg']}"]
    if kind == "missing":
        hint = _MISSING_HINTS.get(str(path[-1])) if path else None
        return [f"{where}: required field is missing" + (f"; {hint}" if hint else "")]
    if kind == "extra_forbidden":
        _, parent = walk(root, error["loc"][:-1])
        models = _models(parent)
        name = str(path[-1]) if path else ""
        if name in UNSUPPORTED_FIELDS:
            return [unsupported_message(where, name, UNSUPPORTED_FIELDS[name])]
        if len(models) == 1:
            fields = list(models[0].model_fields)
            suggestion = likely_field(name, fields)
            hint = f" did you mean {suggestion}?" if suggestion else ""
            return [f"{where}: unknown field;{hint} expected one of {one_of(fields)}"]
        return [f"{where}: unknown field"]
    if kind in ("union_tag_not_found", "union_tag_invalid"):
        expected = one_of(union_tags(annotation))
        type_path = format_path([*path, "type"])
        if kind == "union_tag_not_found":
            return [f"{type_path}: required field is missing; expected one of {expected}"]
        tag = value.get("type") if isinstance(value, dict) else error["ctx"]["tag"]
        if not isinstance(tag, str):
            return [f"{type_path}: expected one of {expected}, got {json_kind(tag)}"]
        if tag in UNSUPPORTED_ITEM_TYPES:
            return [unsupported_message(type_path, tag, UNSUPPORTED_ITEM_TYPES[tag])]
        return [f"{type_path}: {shown(tag)} is not allowed; expected one of {expected}"]
    if kind in ("model_attributes_type", "model_type", "dict_type"):
        return [f"{where}: expected an object, got {json_kind(value)}"]
    if kind == "list_type":
        return [f"{where}: expected a list, got {json_kind(value)}"]
    if kind == "string_type":
        return [f"{where}: expected a string, got {json_kind(value)}"]
    if kind in ("bool_type", "bool_parsing"):
        return [f"{where}: expected true or false, got {json_kind(value)}"]
    if kind in ("float_type", "decimal_type"):
        return [f"{where}: expected a number, got {json_kind(value)}"]
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return [f"{where}: expected an integer, got {json_kind(value)}"]
    if kind == "too_long":
        ctx = error["ctx"]
        return [f"{where}: {ctx['actual_length']} entries; expected at most {ctx['max_length']}"]
    if kind in ("greater_than_equal", "less_than_equal"):
        bound = error["ctx"].get("ge", error["ctx"].get("le"))
        relation = "at least" if kind == "greater_than_equal" else "at most"
        return [f"{where}: {shown(value)} is out of range; expected {relation} {bound}"]
    # A kind not translated above: pydantic's message would speak Python ("Input should be
    # a valid dictionary"), so say only what we know.
    return [f"{where}: {json_kind(value)} is not accepted here"]


def problems_from(error: ValidationError, root: Any) -> list[str]:
    """Our messages for every error pydantic found while validating against ``root``."""
    problems: list[str] = []
    for item in error.errors(include_url=False):
        problems.extend(_convert(item, root))
    return problems
