"""``snap set`` keys of the ``relay`` group (the relay)."""

from __future__ import annotations

from kassa_appliance.appliance.hooks.snap_values import SnapKey

KEYS: tuple[SnapKey, ...] = ()
