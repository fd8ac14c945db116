"""Central settings (Bitrix24 ``KASSACFG``, :mod:`kassa_appliance.bitrix.central_settings`)
checked with the ``snap set`` rules and put in force in the running engine.

The business keys a kassa's CRM may set, in ``snap set`` form (docs/architecture.md
"Central settings"): ``operator.name``, ``operator.vatin``, ``company.taxation``,
``bitrix.allowed-users``, ``bitrix.allowed-departments`` (their users and those of their
sub-departments may create jobs, ``bitrix/departments.py``), ``bitrix.notify-users`` (who
hears of the kassa's problems, ``bitrix/notifications.py``) — each parsed by its ``snap
set`` key's own function and the sections validated by the same models
(:class:`OperatorConfig`, :class:`CompanyConfig`, the ``check_*_ids`` rules of
:class:`BitrixConfig`) — and two the ``snap set`` side has no key for: ``receipt.vat`` (the
VAT type of a position without one, the receipt model's own rule) and
``receipt.payments-place`` (tag 1187). A key set centrally overrides the ``snap set`` value
of that key; a key not set keeps it. Device keys (register, pairing, portal, kassa id,
shift, log …) are refused: they stay in ``snap set``.

A version is validated whole before anything changes: on any problem nothing is applied
and :class:`SettingsRefused` carries one line per problem, each starting with its key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from kassa_appliance.appliance.config import CompanyConfig, Config, OperatorConfig
from kassa_appliance.appliance.config_errors import describe_validation_error
from kassa_appliance.appliance.hooks.settings import KEYS_BY_NAME
from kassa_appliance.appliance.hooks.snap_values import BadValue, show_value
from kassa_appliance.bitrix.central_settings import AppliedSettings, SettingsRefused
from kassa_appliance.fiscal.engine_defaults import TaskDefaults
from kassa_appliance.fiscal.receipt_limits import MAX_ADDRESS_LENGTH
from kassa_appliance.fiscal.receipt_rules import check_text
from kassa_appliance.fiscal.receipt_values import parse_tax_type
from kassa_appliance.setting_checks import first_control_character

SNAP_SET_KEYS = (
    "operator.name",
    "operator.vatin",
    "company.taxation",
    "bitrix.allowed-users",
    "bitrix.allowed-departments",
    "bitrix.notify-users",
)
RECEIPT_KEYS = ("receipt.vat", "receipt.payments-place")
CENTRAL_KEYS = (*SNAP_SET_KEYS, *RECEIPT_KEYS)
NOT_YET_SUPPORTED: Mapping[str, str] = {}
"""Keys the app may write that this appliance version cannot apply yet: refused with the
reason rather than ignored (ignoring an access rule would let anyone print)."""


def _parse_vat(raw: object) -> str:
    try:
        return parse_tax_type(raw)
    except ValueError as error:
        raise BadValue(str(error)) from None


def _parse_place(raw: object) -> str:
    try:
        text = check_text(raw, MAX_ADDRESS_LENGTH)
    except ValueError as error:
        raise BadValue(str(error)) from None
    if first_control_character(text) is not None:
        raise BadValue("contains a control character; expected one line of plain text")
    return text


_RECEIPT_PARSERS: Mapping[str, Callable[[object], str]] = {
    "receipt.vat": _parse_vat,
    "receipt.payments-place": _parse_place,
}


def _key_problem(name: str) -> str | None:
    if name in CENTRAL_KEYS:
        return None
    if name in NOT_YET_SUPPORTED:
        return f"{name}: {NOT_YET_SUPPORTED[name]}"
    if name in KEYS_BY_NAME:
        return (
            f"{name}: is a device setting; expected it in snap set on the appliance, "
            f"not in the central settings (these take {', '.join(CENTRAL_KEYS)})"
        )
    return f"{name}: unknown setting; expected one of {', '.join(CENTRAL_KEYS)}"


def parse_central(document: Mapping[str, Any]) -> dict[str, object]:
    """The valid values of a SETTINGS object by key (``""``/``null`` mean "not set"), or
    :class:`SettingsRefused` with every problem."""
    problems: list[str] = []
    values: dict[str, object] = {}
    for name, raw in document.items():
        problem = _key_problem(str(name))
        if problem is not None:
            problems.append(problem)
            continue
        if raw is None or raw == "" or raw == []:
            continue
        try:
            if name in _RECEIPT_PARSERS:
                values[name] = _RECEIPT_PARSERS[name](raw)
            else:
                values[name] = KEYS_BY_NAME[name].parse(raw)
        except BadValue as error:
            problems.append(f"{name}: {show_value(raw)} {error}")
    if problems:
        raise SettingsRefused("\n".join(problems))
    return values


def central_applier(
    config: Config,
    engine: TaskDefaults,
    operator_of: Callable[[Config], dict[str, str] | None],
) -> Callable[[Mapping[str, Any]], AppliedSettings]:
    """The callback the Bitrix24 link calls with each version (``bitrix_link(central=…)``).

    ``operator_of`` turns a configuration into the engine's default operator (the daemon's
    own rule, so both paths agree)."""

    def apply(document: Mapping[str, Any]) -> AppliedSettings:
        values = parse_central(document)
        try:
            operator = OperatorConfig.model_validate(
                {
                    "name": values.get("operator.name", config.operator.name),
                    "vatin": values.get("operator.vatin", config.operator.vatin),
                }
            )
            company = CompanyConfig.model_validate(
                {"taxation": values.get("company.taxation", config.company.taxation)}
            )
        except ValidationError as error:
            raise SettingsRefused("\n".join(describe_validation_error(error))) from None
        merged = config.model_copy(update={"operator": operator, "company": company})
        bitrix = config.bitrix
        users = values.get("bitrix.allowed-users", bitrix.allowed_users)
        departments = values.get("bitrix.allowed-departments", bitrix.allowed_departments)
        notify = values.get("bitrix.notify-users", bitrix.notify_users)
        engine.update_defaults(
            operator=operator_of(merged),
            taxation=merged.company.taxation,
            vat=_text_or_none(values.get("receipt.vat")),
            payments_place=_text_or_none(values.get("receipt.payments-place")),
        )
        return AppliedSettings(
            allowed_users=frozenset(_ids(users)),
            allowed_departments=frozenset(_ids(departments)),
            notify_users=_ids(notify),
        )

    return apply


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _ids(value: object) -> tuple[int, ...]:
    return (
        tuple(item for item in value if isinstance(item, int))
        if isinstance(value, tuple | list)
        else ()
    )
