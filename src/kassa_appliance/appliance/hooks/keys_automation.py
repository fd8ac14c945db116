"""``snap set`` keys of the ``automation`` group (CRM automation this appliance hosts)."""

from __future__ import annotations

from kassa_appliance.appliance.hooks.snap_values import BadValue, SnapKey, _checked
from kassa_appliance.channels.automation.settings import (
    check_connector,
    check_field_code,
    check_poll,
)


def _bool(raw: object) -> object:
    if isinstance(raw, bool):
        return raw
    if raw in ("true", "false"):
        return raw == "true"
    raise BadValue("is not allowed; expected true or false")


def _seconds(raw: object) -> object:
    value = raw
    if isinstance(raw, str):
        try:
            value = float(raw.strip())
        except ValueError:
            value = -1.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        value = -1.0
    try:
        return check_poll(float(value))
    except ValueError as error:
        raise BadValue(str(error)) from None


KEYS: tuple[SnapKey, ...] = (
    SnapKey("automation.enabled", _bool, "host CRM automation (deal stage / payment → receipt)"),
    SnapKey("automation.connector", _checked(check_connector), "auth_connector of the event queue"),
    SnapKey("automation.poll-seconds", _seconds, "seconds between offline event polls"),
    SnapKey("automation.fd-field", _checked(check_field_code), "deal field for the FD number"),
)
