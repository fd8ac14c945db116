"""Shared helpers for the Bitrix24 REST/jobs tests: a loopback emulator and clients."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kassa_appliance.bitrix.auth import OAuthAuth, TokenFile
from kassa_appliance.bitrix.rest import RestClient, RetryPolicy
from kassa_appliance.testbeds.bitrix24.app import Emulator, oauth_credentials

FAST_RETRY = RetryPolicy(attempts=4, rate_limit_attempts=12, base_delay=0.002, max_delay=0.02)


def oauth_client(
    emulator: Emulator,
    token_path: Path,
    *,
    pairing: dict[str, Any] | None = None,
    retry: RetryPolicy = FAST_RETRY,
    local_address: str | None = None,
    **auth_options: Any,
) -> RestClient:
    """A REST client paired with the emulator's admin (or the given pairing);
    ``local_address`` (e.g. ``PRODUCER_ADDRESS``) gives it its own rate-limit bucket."""
    pairing = pairing or emulator.credentials()
    auth = OAuthAuth(oauth_credentials(pairing), TokenFile(token_path), **auth_options)
    return RestClient(auth, retry=retry, local_address=local_address)
