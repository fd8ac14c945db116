"""``snap set`` keys of the ``lan`` group (the LAN API)."""

from __future__ import annotations

from kassa_appliance.appliance.hooks.snap_values import SnapKey

KEYS: tuple[SnapKey, ...] = ()
