"""Test-wide settings: the Bitrix24 emulator runs with its ``test`` limit profile.

The portal's REST limit stays on in every test (a burst over 50 requests is refused with
503 ``QUERY_LIMIT_EXCEEDED``) but drains fast, so a test's traffic is not paced at the real
2 requests/s. Set through the environment, so emulators started as processes (the CLI, the
demo) use it too; ``tests/test_rest_limits.py`` runs the real ``standard`` profile.
"""

from __future__ import annotations

import os

from kassa_appliance.testbeds.bitrix24.limits import DEFAULT_PROFILE_ENV, TEST

os.environ.setdefault(DEFAULT_PROFILE_ENV, TEST.name)

from relay_cluster import nats_cluster, relay_pki  # noqa: F401 - shared by test_relay_*
