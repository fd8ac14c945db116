"""The ``b24bot`` section of the configuration: the Bitrix24 chat bot (imbot.v2) hosted here.

Off by default. The rules here run on every load of ``config.json`` and on every
``snap set`` (the keys are in :mod:`kassa_appliance.appliance.hooks.keys_b24bot`).
"""

from __future__ import annotations

from kassa_appliance.setting_checks import SettingsSection


class B24BotConfig(SettingsSection):
    enabled: bool = False
