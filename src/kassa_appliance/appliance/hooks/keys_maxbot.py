"""``snap set`` keys of the ``maxbot`` group (the MAX bot this appliance hosts)."""

from __future__ import annotations

from kassa_appliance.appliance.hooks.snap_values import SnapKey

KEYS: tuple[SnapKey, ...] = ()
