"""Typed exceptions for Bitrix24 REST and OAuth errors.

Bitrix answers errors as ``{"error": CODE, "error_description": TEXT}`` with an HTTP status.
:func:`error_from_response` turns that into the most specific class below, so callers can
``except NotFound`` instead of comparing strings. Messages carry the method name, the
Bitrix code and Bitrix's own text — never a URL, token or secret.
"""

from __future__ import annotations


class BitrixError(Exception):
    """A Bitrix24 call failed; ``code`` is Bitrix's error code (upper-cased)."""

    def __init__(
        self, code: str, description: str = "", *, status: int | None = None, method: str = ""
    ) -> None:
        self.code = code
        self.description = description
        self.status = status
        self.method = method
        where = f"{method}: " if method else ""
        http = f" (HTTP {status})" if status is not None else ""
        text = f": {description}" if description else ""
        super().__init__(f"{where}Bitrix24 error {code}{http}{text}")


class TransportError(BitrixError):
    """The portal could not be reached or did not answer (after all retries)."""


class ServerError(BitrixError):
    """HTTP 5xx or an unparseable answer from the portal (after all retries)."""


class RateLimited(BitrixError):
    """``QUERY_LIMIT_EXCEEDED`` (503) or ``OPERATION_TIME_LIMIT`` (429) after all retries."""


class AuthError(BitrixError):
    """Base for authorisation problems."""


class ExpiredToken(AuthError):
    """``expired_token``: the access token expired (and a refresh did not help)."""


class InvalidToken(AuthError):
    """``invalid_token`` / ``NO_AUTH_FOUND``: the portal does not know the credentials."""


class PairingLost(AuthError):
    """The OAuth server refused the refresh token (``invalid_grant``/``invalid_client``):
    the appliance must be paired again with a new refresh token (unless a spare token
    chain can re-seed the main one, see ``bitrix/token_chains``)."""

    def __init__(
        self,
        code: str,
        description: str = "",
        *,
        status: int | None = None,
        method: str = "",
        answer_lost: bool = False,
    ) -> None:
        super().__init__(code, description, status=status, method=method)
        self.answer_lost = answer_lost
        """The refusal came after an earlier attempt of the same refresh got no answer
        (the server may have rotated the token then)."""


class AccessDenied(BitrixError):
    """``ACCESS_DENIED``, ``WRONG_AUTH_TYPE``, ``insufficient_scope``, ``user_access_error``…"""


class NotFound(BitrixError):
    """``ERROR_ENTITY_NOT_FOUND``, ``ERROR_PROPERTY_NOT_FOUND``, ``ERROR_NOT_FOUND``, …"""


class AlreadyExists(BitrixError):
    """``ERROR_ENTITY_ALREADY_EXISTS`` / ``ERROR_PROPERTY_ALREADY_EXISTS``."""


class InvalidArgument(BitrixError):
    """``ERROR_ARGUMENT`` and other 4xx input errors (``COMMAND_ERROR``, ``PARAMS_ERROR``…)."""


class BatchError(BitrixError):
    """One command inside a ``batch`` failed; ``key`` names the command."""

    def __init__(self, key: str, inner: BitrixError) -> None:
        super().__init__(inner.code, inner.description, status=inner.status, method=inner.method)
        self.key = key
        self.inner = inner


TEMPORARY_ERRORS: tuple[type[BitrixError], ...] = (TransportError, ServerError, RateLimited)
"""Failures that say nothing about the request itself (network, 5xx, rate limit, each after
the REST client's own retries): worth trying the same call again later."""

_RATE_LIMIT_CODES = frozenset({"QUERY_LIMIT_EXCEEDED", "OPERATION_TIME_LIMIT", "OVERLOAD_LIMIT"})
_ACCESS_CODES = frozenset(
    {
        "ACCESS_DENIED",
        "WRONG_AUTH_TYPE",
        "INSUFFICIENT_SCOPE",
        "INVALID_SCOPE",
        "USER_ACCESS_ERROR",
        "INVALID_CREDENTIALS",
        "USER_ID_ACCESS_ERROR",
        "PAYMENT_REQUIRED",
        "METHOD_CONFIRM_WAITING",
    }
)


def error_class_for(code: str, status: int | None) -> type[BitrixError]:
    """The exception class for a Bitrix error code (compared upper-cased) and HTTP status."""
    upper = code.upper()
    if upper == "EXPIRED_TOKEN":
        return ExpiredToken
    if upper in {"INVALID_TOKEN", "NO_AUTH_FOUND"}:
        return InvalidToken
    if upper in {"INVALID_GRANT", "INVALID_CLIENT"}:
        return PairingLost
    if upper in _RATE_LIMIT_CODES or status == 429:
        return RateLimited
    if upper in _ACCESS_CODES:
        return AccessDenied
    if upper.endswith("NOT_FOUND"):
        return NotFound
    if upper.endswith("ALREADY_EXISTS") or upper.endswith("ALREADY_EXIST"):
        return AlreadyExists
    if status is not None and status >= 500:
        return ServerError
    if status == 401:
        return InvalidToken
    if status == 403:
        return AccessDenied
    return InvalidArgument


def error_from_payload(payload: object, status: int | None, method: str) -> BitrixError | None:
    """Build the typed error from a decoded Bitrix error body, or None if it is not one."""
    if not isinstance(payload, dict) or "error" not in payload:
        return None
    code = str(payload.get("error") or "UNKNOWN_ERROR")
    description = str(payload.get("error_description") or "")
    return error_class_for(code, status)(code, description, status=status, method=method)
