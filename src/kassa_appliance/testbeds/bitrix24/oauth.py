"""The emulated OAuth server (``oauth.bitrix.info/oauth/token/``): refresh grant only.

It behaves as the platform is documented, and where the docs are silent, in the strictest
way they allow (see :meth:`PortalState.rotate` and docs/architecture.md "Pairing and
tokens"): a refresh token lives 180 days, a used (rotated) or expired one answers
``invalid_grant``, and independent chains of the same user and app (two pairings) do not
affect each other. A client that loses a rotated token's answer is therefore unpaired
unless it holds a second chain — exactly what the appliance's spare chain is tested for.
"""

from __future__ import annotations

from typing import Any

from kassa_appliance.testbeds.bitrix24.state import PortalState


def token_endpoint(state: PortalState, params: dict[str, Any], portal_url: str) -> tuple[int, Any]:
    """Answer one token request: (HTTP status, JSON body)."""
    grant = params.get("grant_type")
    if grant != "refresh_token":
        return 400, {
            "error": "invalid_request",
            "error_description": f"grant_type {grant!r} is not supported here (refresh_token)",
        }
    if params.get("client_id") != state.client_id or params.get("client_secret") != (
        state.client_secret
    ):
        return 401, {"error": "invalid_client", "error_description": "Invalid client credentials"}
    refresh = params.get("refresh_token")
    rotated = state.rotate(refresh) if isinstance(refresh, str) else None
    if rotated is None:
        return 400, {"error": "invalid_grant", "error_description": "Invalid grant"}
    access, new_refresh, user_id, expires = rotated
    return 200, {
        "access_token": access,
        "refresh_token": new_refresh,
        "expires": int(expires),
        "expires_in": int(state.access_ttl),
        "client_endpoint": portal_url.rstrip("/") + "/rest/",
        "server_endpoint": portal_url.rstrip("/") + "/oauth/rest/",
        "domain": "oauth.bitrix.info",
        "member_id": state.member_id,
        "scope": "entity,pull,user_brief",
        "status": "L",
        "user_id": user_id,
    }
