"""The emulated portal's page that hosts the built Kassa app in an iframe, like Bitrix24 does.

Routes (on the emulator's REST port):

* ``GET /_portal/?user=1&lang=ru&placement=DEFAULT&options={json}`` — the portal page of a
  user (1 = the admin, 2 = the cashier). It holds the app in an iframe named as the SDK
  expects (:meth:`FrameHost.frame_name`) and relays the SDK's messages to ``/_portal/frame``.
* ``POST /_portal/frame`` ``{"session", "command", "params"}`` → ``{"answer": …}``.
* ``GET /_portal/state`` — install state and the frame commands seen (for tests).
* ``GET /_app/<path>`` — the app's files, from ``app/dist`` (or the ZIP ``kassa-app.zip``).

The iframe loads the app from ``http://localhost:<port>`` while the portal page is
``http://127.0.0.1:<port>``: two origins, as a static app on Bitrix24's CDN and the portal
are, so the app's REST calls are cross-origin and need the CORS answers of :func:`with_cors`.
"""

from __future__ import annotations

import gzip
import html
import json
import mimetypes
import zipfile
from pathlib import Path
from urllib.parse import parse_qs

from kassa_appliance.testbeds.bitrix24.frame_protocol import FrameError, FrameHost
from kassa_appliance.testbeds.bitrix24.state import ADMIN_USER_ID
from kassa_appliance.testbeds.bitrix24.web import Request, Response

APP_DIST_ENV = "KASSA_APP_DIST"
BUILD_HINT = "build it with `make app` (cd app && npm ci && npm run build)"
_CORS_HEADERS = "Content-Type, Authorization, X-Requested-With"
_COMPRESSIBLE = ("text/", "application/javascript", "application/json", "image/svg+xml")


def default_app_dist() -> Path:
    """``app/dist`` of the source tree this package runs from (``$KASSA_APP_DIST`` wins)."""
    import os

    named = os.environ.get(APP_DIST_ENV)
    if named:
        return Path(named)
    return Path(__file__).resolve().parents[4] / "app" / "dist"


class AppFiles:
    """The built app: a folder with ``index.html`` or a ZIP with it at the root."""

    def __init__(self, source: Path) -> None:
        self.source = source

    def available(self) -> bool:
        if self.source.is_dir():
            return (self.source / "index.html").is_file()
        return self.source.is_file() and zipfile.is_zipfile(self.source)

    def read(self, relative: str) -> bytes | None:
        relative = relative.lstrip("/") or "index.html"
        if ".." in Path(relative).parts:
            return None
        if self.source.is_dir():
            path = self.source / relative
            return path.read_bytes() if path.is_file() else None
        try:
            with zipfile.ZipFile(self.source) as archive:
                return archive.read(relative)
        except (KeyError, OSError, zipfile.BadZipFile):
            return None


def with_cors(request: Request, response: Response) -> Response:
    """The portal's REST answers a browser on another origin (the app's CDN)."""
    origin = request.headers.get("origin")
    if origin:
        response.headers.setdefault("Access-Control-Allow-Origin", origin)
        response.headers.setdefault("Vary", "Origin")
    return response


def preflight(request: Request) -> Response:
    """The answer to a CORS preflight (``OPTIONS``) of a ``/rest/`` call."""
    response = Response(204, b"", "text/plain")
    response.headers.update(
        {
            "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
            "Access-Control-Allow-Headers": request.headers.get(
                "access-control-request-headers", _CORS_HEADERS
            ),
            "Access-Control-Max-Age": "600",
        }
    )
    return with_cors(request, response)


class PortalPage:
    """Serves the portal page, the frame relay and the app's files."""

    def __init__(self, frames: FrameHost, files: AppFiles) -> None:
        self.frames = frames
        self.files = files

    def portal_origin(self) -> str:
        return self.frames.portal_url

    def app_origin(self) -> str:
        """Where the app is served from: the same server under another host name."""
        return self.frames.portal_url.replace("://127.0.0.1:", "://localhost:", 1)

    def url(self, user_id: int = ADMIN_USER_ID, **query: str) -> str:
        """The address of the portal page for ``user_id``."""
        extra = "".join(f"&{key}={value}" for key, value in query.items())
        return f"{self.frames.portal_url}/_portal/?user={user_id}{extra}"

    def handle(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_app/"):
            accepts = request.headers.get("accept-encoding", "")
            return self._app_file(path.removeprefix("/_app/"), gzip_ok="gzip" in accepts)
        if path == "/_portal/frame" and request.method == "POST":
            return self._frame(request)
        if path == "/_portal/state":
            return Response.json(
                200,
                {
                    "installed": self.frames.installed,
                    "install_finish_calls": self.frames.install_finish_calls,
                    "commands": self.frames.commands(),
                },
            )
        if path in ("/_portal", "/_portal/") and request.method == "GET":
            return self._page(request.query)
        return Response.json(404, {"error": "NOT_FOUND", "error_description": path})

    def _app_file(self, relative: str, *, gzip_ok: bool = False) -> Response:
        """One file of the app; text compressed with gzip when the browser takes it, as a
        CDN serves a static app (the app's size benchmark counts the bytes on the wire)."""
        body = self.files.read(relative)
        if body is None:
            return Response(404, b"not found", "text/plain")
        guessed = mimetypes.guess_type(relative or "index.html")[0]
        content_type = guessed or "application/octet-stream"
        if content_type.startswith("text/") or content_type.endswith("javascript"):
            content_type += "; charset=utf-8"
        compress = gzip_ok and content_type.startswith(_COMPRESSIBLE)
        response = Response(
            200, gzip.compress(body, 6, mtime=0) if compress else body, content_type
        )
        response.headers["Cache-Control"] = "no-cache"
        response.headers["Vary"] = "Accept-Encoding"
        if compress:
            response.headers["Content-Encoding"] = "gzip"
        return response

    def _frame(self, request: Request) -> Response:
        try:
            data = json.loads(request.body or b"{}")
            if not isinstance(data, dict):
                raise ValueError("the frame relay expects a JSON object")
            answer = self.frames.answer(
                str(data.get("session", "")), str(data.get("command", "")), data.get("params")
            )
        except (ValueError, FrameError) as exc:
            return Response.json(400, {"error": "FRAME_ERROR", "error_description": str(exc)})
        return Response.json(200, {"answer": answer})

    def _page(self, query: str) -> Response:
        args = {key: values[-1] for key, values in parse_qs(query).items()}
        if not self.files.available():
            text = (
                f"<h1>The Kassa app is not built</h1><p>No app at "
                f"{html.escape(str(self.files.source))}: {html.escape(BUILD_HINT)}.</p>"
            )
            return Response(503, _html("Kassa — not built", text), "text/html; charset=utf-8")
        try:
            user_id = int(args.get("user", ADMIN_USER_ID))
            options = json.loads(args.get("options", "{}"))
        except ValueError:
            return Response(400, b"user must be a number, options JSON", "text/plain")
        placement = args.get("placement", "DEFAULT")
        session = self.frames.open(
            user_id,
            lang=args.get("lang", "ru"),
            placement=placement,
            placement_options=options if isinstance(options, dict) else {},
        )
        user = self.frames.state.users[user_id]
        src = f"{self.app_origin()}/_app/index.html"
        if placement != "DEFAULT":
            src += f"?placement={placement}"
        domain = self.portal_origin().split("://", 1)[-1]
        config = {
            "session": session.session_id,
            "appOrigin": self.app_origin(),
        }
        body = _PAGE.format(
            user=html.escape(f"{user.name} (#{user.id}{', admin' if user.admin else ''})"),
            name=html.escape(self.frames.frame_name(domain), quote=True),
            src=html.escape(src, quote=True),
            config=json.dumps(config),
            script=_RELAY_SCRIPT,
        )
        return Response(200, _html("Bitrix24 emulator — Kassa", body), "text/html; charset=utf-8")


def _html(title: str, body: str) -> bytes:
    return (
        f'<!doctype html><html lang="ru"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>{_STYLE}</head><body>{body}</body></html>"
    ).encode()


_STYLE = """<style>
html,body{margin:0;height:100%;font:14px system-ui,sans-serif;background:#eef2f4}
header{height:36px;display:flex;align-items:center;gap:12px;padding:0 12px;background:#2fc6f6;
color:#fff;font-weight:600}
header small{font-weight:400;opacity:.9}
iframe{display:block;border:0;width:100%;height:calc(100% - 36px);background:#fff}
</style>"""

_PAGE = """<header>Bitrix24 (emulator) <small>{user}</small></header>
<iframe id="app" name="{name}" src="{src}" allow="clipboard-write"></iframe>
<script>const PORTAL = {config};</script>
<script>{script}</script>"""

# The relay: parse ``command:params:callback:appSid`` (params may hold colons), ask the
# emulator for the answer, post ``callback:answer`` back to the app's origin only.
_RELAY_SCRIPT = """
(() => {
  const frame = document.getElementById('app');
  window.portalLog = [];
  window.addEventListener('message', async (event) => {
    if (event.source !== frame.contentWindow || event.origin !== PORTAL.appOrigin) return;
    if (typeof event.data !== 'string') return;
    const parts = event.data.split(':');
    if (parts.length < 3) return;
    const command = parts.shift();
    parts.pop();
    const callback = parts.pop();
    const raw = parts.join(':');
    let params = raw;
    try { params = raw ? JSON.parse(raw) : null; } catch (e) { params = raw; }
    window.portalLog.push(command);
    const reply = await fetch('/_portal/frame', {
      method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({session: PORTAL.session, command, params})
    });
    const data = await reply.json();
    if (!reply.ok) { console.error('portal: ' + data.error_description); return; }
    if (command === 'resizeWindow' && params && params.height) {
      frame.style.height = String(params.height) + 'px';
    }
    const answer = data.answer === null || data.answer === undefined
      ? callback : callback + ':' + JSON.stringify(data.answer);
    frame.contentWindow.postMessage(answer, PORTAL.appOrigin);
  });
})();
"""
