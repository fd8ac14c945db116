"""NATS users with permissions: the relay's, and one per kassa that can read only its own
checks and write only its own results (``wire`` explains the names).

nats-server 2.9 reads them from its configuration (``authorization { users = [...] }``,
reloaded with SIGHUP); ``kassa-relay nats-user`` prints a kassa's entry. Passwords go in as
given: keep the included file 0600 (``deploy/relay/``).
"""

from __future__ import annotations

import json
from typing import Any

from kassa_appliance.channels.relay.wire import (
    JOBS_STREAM,
    RESULTS_STREAM,
    durable_name,
    inbox_prefix,
    results_subject,
)


def kassa_user_name(tenant: str, kassa: str) -> str:
    return durable_name(tenant, kassa)


def kassa_permissions(tenant: str, kassa: str) -> dict[str, Any]:
    durable = durable_name(tenant, kassa)
    own_results = results_subject(f"{tenant}.{kassa}.>")
    return {
        "publish": {
            "allow": [
                f"$JS.API.CONSUMER.MSG.NEXT.{JOBS_STREAM}.{durable}",
                f"$JS.API.CONSUMER.INFO.{JOBS_STREAM}.{durable}",
                f"$JS.ACK.{JOBS_STREAM}.{durable}.>",
                own_results,
                f"$JS.API.DIRECT.GET.{RESULTS_STREAM}.{own_results}",
            ]
        },
        "subscribe": {"allow": [f"{inbox_prefix(tenant, kassa)}.>"]},
    }


def kassa_user(tenant: str, kassa: str, password: str) -> dict[str, Any]:
    return {
        "user": kassa_user_name(tenant, kassa),
        "password": password,
        "permissions": kassa_permissions(tenant, kassa),
    }


def relay_user(user: str, password: str) -> dict[str, Any]:
    return {"user": user, "password": password}


def users_block(users: list[dict[str, Any]]) -> str:
    """``authorization { users = [...] }`` in nats-server's config syntax (JSON is a subset)."""
    return "authorization {\n  users = " + json.dumps(users, indent=2) + "\n}\n"
