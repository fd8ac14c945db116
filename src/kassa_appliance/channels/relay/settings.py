"""The ``relay`` section of the configuration: the cloud relay connection (NATS JetStream).

Off by default. The rules here run on every load of ``config.json`` and on every
``snap set`` (the keys are in :mod:`kassa_appliance.appliance.hooks.keys_relay`).
"""

from __future__ import annotations

from kassa_appliance.setting_checks import SettingsSection


class RelayConfig(SettingsSection):
    enabled: bool = False
