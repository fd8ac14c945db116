"""The install hook: make the defaults visible in ``snap get`` without overriding anything.

Only keys that are unset are seeded (a re-install or a value set before, e.g. by a gadget
default applied earlier, wins). ``register.driver`` is never seeded: see
:data:`kassa_appliance.appliance.hooks.settings.INSTALL_SEEDED_KEYS`.
"""

from __future__ import annotations

from kassa_appliance.appliance.hooks.settings import SNAP_GROUPS, snap_defaults
from kassa_appliance.appliance.hooks.snap_values import lookup
from kassa_appliance.appliance.hooks.snapctl import Snapctl


def seed_defaults(snapctl: Snapctl) -> dict[str, object]:
    """Set the defaults of unset keys; returns what was set."""
    document = snapctl.get_document(SNAP_GROUPS)
    missing = {
        name: value
        for name, value in snap_defaults().items()
        if lookup(document, name) in (None, "")
    }
    snapctl.set(missing)
    return missing
