"""The ``automation`` section of the configuration: CRM automation this appliance hosts.

Off by default. The rules here run on every load of ``config.json`` and on every
``snap set`` (the keys are in :mod:`kassa_appliance.appliance.hooks.keys_automation`).
"""

from __future__ import annotations

from kassa_appliance.setting_checks import SettingsSection


class AutomationConfig(SettingsSection):
    enabled: bool = False
