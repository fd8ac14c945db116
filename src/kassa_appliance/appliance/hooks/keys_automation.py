"""``snap set`` keys of the ``automation`` group (CRM automation this appliance hosts)."""

from __future__ import annotations

from kassa_appliance.appliance.hooks.snap_values import SnapKey, _bool, _checked, _number
from kassa_appliance.channels.automation.settings import (
    check_connector,
    check_field_code,
    check_poll,
)

KEYS: tuple[SnapKey, ...] = (
    SnapKey("automation.enabled", _bool, "host CRM automation (deal stage / payment → receipt)"),
    SnapKey("automation.connector", _checked(check_connector), "auth_connector of the event queue"),
    SnapKey("automation.poll-seconds", _number(check_poll), "seconds between offline event polls"),
    SnapKey("automation.fd-field", _checked(check_field_code), "deal field for the FD number"),
)
