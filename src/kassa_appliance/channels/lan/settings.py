"""The ``lan`` section of the configuration: the LAN API (Atol Web Requests / KKMServer compatible).

Off by default. The rules here run on every load of ``config.json`` and on every
``snap set`` (the keys are in :mod:`kassa_appliance.appliance.hooks.keys_lan`).
"""

from __future__ import annotations

from kassa_appliance.setting_checks import SettingsSection


class LanConfig(SettingsSection):
    enabled: bool = False
