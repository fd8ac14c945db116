"""The ``automation`` section of the configuration: CRM automation this appliance hosts.

Off by default. Exactly one appliance of a portal should be the automation host
(``automation.enabled``); a second one by mistake prints nothing twice (the job ids are
derived from the deal, see docs/automation.md) but spends REST requests. The rules here run
on every load of ``config.json`` and on every ``snap set`` (the keys are in
:mod:`kassa_appliance.appliance.hooks.keys_automation`). The automation rules themselves
live in Bitrix24 (the ``KASSACFG`` item ``@automation``), not here.
"""

from __future__ import annotations

import re

from pydantic import field_validator

from kassa_appliance.setting_checks import SettingsSection

CONNECTOR = re.compile(r"^[A-Za-z0-9_]{1,32}$")
FIELD_CODE = re.compile(r"^UF_CRM_[A-Z0-9_]{1,43}$")
POLL_MIN, POLL_MAX = 1.0, 600.0


def check_connector(value: str) -> str:
    if not CONNECTOR.match(value):
        raise ValueError("is not a connector key; expected 1–32 of A-Z, a-z, 0-9 and _")
    return value


def check_poll(value: float) -> float:
    if not POLL_MIN <= value <= POLL_MAX:
        raise ValueError(
            f"is not a poll interval; expected seconds from {POLL_MIN:g} to {POLL_MAX:g}"
        )
    return value


def check_field_code(value: str) -> str:
    if not FIELD_CODE.match(value) or len(value) > 50:
        raise ValueError(
            "is not a deal field code; expected UF_CRM_ and up to 43 of A-Z, 0-9 and _ "
            "(crm.deal.userfield.add FIELD_NAME)"
        )
    return value


class AutomationConfig(SettingsSection):
    enabled: bool = False
    connector: str = "kassa"
    """The ``auth_connector`` of the offline event queue: the daemon's own changes to deals
    (the FD number field) carry it, so Bitrix24 does not queue them back to it."""
    poll_seconds: float = 10.0
    """Between ``event.offline.get`` calls while the queue is empty (a full page is read
    again at once). One request per poll: 360 an hour at 10 s."""
    fd_field: str = "UF_CRM_KASSA_FD"
    """The deal field that gets the fiscal document number (created when missing)."""

    _connector = field_validator("connector")(check_connector)
    _poll = field_validator("poll_seconds")(check_poll)
    _field = field_validator("fd_field")(check_field_code)
