"""Who may call the LAN API, from which page, and how every refusal reads.

* **Basic auth** (``lan.username``/``lan.password``): compared in constant time; the
  password is never logged or echoed. Like Web Requests, ``serverInfo`` and ``utils/*``
  answer without it (clients probe them before they log in).
* **Trusted clients** (``lan.trusted-clients``): those addresses — and only those — may
  call without credentials; set on purpose and warned about (log, ``status``).
* **Browsers**: a request carrying ``Origin`` is served only for an origin on
  ``lan.cors-origins`` (or ``*``), so a web page opened on a trusted machine cannot use the
  register; allowed origins get CORS headers and the Private Network Access answer
  (``Access-Control-Allow-Private-Network: true``) Chrome asks for when an https page
  calls a LAN address.
* **Guessing**: an address that sends wrong credentials 10 times within a minute is
  answered 429 for a minute (:mod:`kassa_appliance.channels.lan.throttle`).
* **Errors**: every HTTP-level problem (401, 403, 404, 405, 413, 500) is answered in the
  caller's dialect: Atol's ``{"error": {"code", "description"}}`` or KKMServer's
  ``{"Status": 2, "Error"}``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from kassa_appliance.channels.lan.settings import LanConfig
from kassa_appliance.channels.lan.throttle import LoginThrottle
from kassa_appliance.channels.lan.wr_shapes import error_body

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PUBLIC_PATHS = frozenset(
    {"/api/v2/serverInfo", "/api/v2/utils/mapping", "/api/v2/utils/deviceParametersStruct"}
)
REALM = 'Basic realm="kassa-appliance", charset="UTF-8"'
MAX_ALLOW_HEADERS = 512
ALLOWED_METHODS = "GET, POST, PUT, DELETE, OPTIONS"


def is_kkm_path(path: str) -> bool:
    return path.rstrip("/").lower().startswith("/execute")


def problem_response(request: web.Request, status: int, description: str) -> web.Response:
    """An error in the dialect of the API the path belongs to."""
    if is_kkm_path(request.path):
        body: dict[str, Any] = {"Status": 2, "Error": description, "Command": ""}
    else:
        body = error_body(description)
    return web.json_response(body, status=status)


class Access:
    """The access rules of one configuration (credentials, allow-list, origins)."""

    def __init__(self, config: LanConfig) -> None:
        self._username = config.username
        secret = config.password.get_secret_value() if config.password else None
        self._expected = (
            None if secret is None or config.username is None else f"{config.username}:{secret}"
        )
        self._networks = [ipaddress.ip_network(entry) for entry in config.trusted_clients]
        self._origins = frozenset(config.cors_origins)
        self.failed_logins = 0
        self.trusted_calls = 0
        self.throttle = LoginThrottle()

    def is_trusted(self, address: str | None) -> bool:
        if not address or not self._networks:
            return False
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip.version == net.version and ip in net for net in self._networks)

    def has_credentials(self, header: str | None) -> bool:
        if self._expected is None or not header:
            return False
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "basic" or len(token) > 1024:
            return False
        try:
            given = base64.b64decode(token.strip(), validate=True)
        except (binascii.Error, ValueError):
            return False
        return hmac.compare_digest(given, self._expected.encode("utf-8"))

    def origin_allowed(self, origin: str) -> bool:
        return "*" in self._origins or origin.lower() in self._origins

    def cors_headers(self, origin: str | None) -> dict[str, str]:
        if origin is None or not self.origin_allowed(origin):
            return {}
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin",
        }

    def preflight(self, request: web.Request) -> web.Response:
        origin = request.headers.get("Origin")
        if origin is None or not self.origin_allowed(origin):
            return problem_response(request, 403, "Запросы с этой страницы не разрешены")
        headers = self.cors_headers(origin)
        wanted = request.headers.get("Access-Control-Request-Headers", "")
        headers["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        headers["Access-Control-Allow-Headers"] = (
            wanted[:MAX_ALLOW_HEADERS] if wanted else "Content-Type, Authorization, deviceID"
        )
        headers["Access-Control-Max-Age"] = "600"
        if request.headers.get("Access-Control-Request-Private-Network", "").lower() == "true":
            headers["Access-Control-Allow-Private-Network"] = "true"
        return web.Response(status=204, headers=headers)

    def refusal(self, request: web.Request) -> web.Response | None:
        """Why this request may not go on, or None."""
        origin = request.headers.get("Origin")
        if origin is not None and not self.origin_allowed(origin):
            return problem_response(request, 403, "Запросы с этой страницы не разрешены")
        if request.path.rstrip("/") in PUBLIC_PATHS:
            return None
        address = request.remote or ""
        locked = self.throttle.retry_after(address)
        if locked is not None and request.headers.get("Authorization"):
            response = problem_response(
                request, 429, "Слишком много неверных паролей; повторите позже"
            )
            response.headers["Retry-After"] = str(max(1, round(locked)))
            return response
        if self.has_credentials(request.headers.get("Authorization")):
            self.throttle.succeeded(address)
            return None
        if self.is_trusted(request.remote):
            self.trusted_calls += 1
            return None
        if request.headers.get("Authorization"):
            self.failed_logins += 1
            self.throttle.failed(address)
            log.warning("LAN API: wrong credentials from %s", request.remote)
        response = problem_response(request, 401, "Требуется авторизация (HTTP Basic)")
        response.headers["WWW-Authenticate"] = REALM
        return response


def access_middleware(access: Access) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method == "OPTIONS":
            return access.preflight(request)
        refused = access.refusal(request)
        if refused is not None:
            refused.headers.update(access.cors_headers(request.headers.get("Origin")))
            return refused
        response = await handler(request)
        response.headers.update(access.cors_headers(request.headers.get("Origin")))
        return response

    return middleware


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """HTTP errors in the caller's dialect; an unexpected error is logged, answered 500,
    and never stops the server."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        text = {
            404: f"Нет такого метода: {request.method} {request.path[:200]}",
            405: f"Метод {request.method} не поддерживается для {request.path[:200]}",
            413: "Слишком большой запрос",
        }.get(error.status, error.reason or "Ошибка запроса")
        return problem_response(request, error.status, text)
    except Exception:
        log.exception("LAN API: %s %s failed", request.method, request.path[:200])
        return problem_response(request, 500, "Внутренняя ошибка сервера")
