"""The web console at /ui: its static files, served by every worker.

GET /ui and GET /ui/{path} need no key: the files hold no data, and every API call the
page makes carries the key (kept in the tab's session storage). The endpoints the
console reads that are not part of a primitive live with the worker itself
(bus/system/http.py: /v1/whoami, /v1/workers, /v1/watch).
"""

from __future__ import annotations

import hashlib
import mimetypes
from pathlib import Path

import faust
from aiohttp import web

__all__ = ["install"]

STATIC = Path(__file__).resolve().parent / "static"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}
# No inline script or style, nothing from another origin: a value that slipped into the
# DOM as markup could not run.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def static_file(relative: str) -> Path | None:
    """The file under STATIC that relative names, or None (missing, a directory, or outside)."""
    if "\\" in relative or "\x00" in relative:
        return None
    candidate = (STATIC / relative).resolve()
    if not candidate.is_relative_to(STATIC) or not candidate.is_file():
        return None
    return candidate


def file_response(request: web.Request, path: Path) -> web.StreamResponse:
    body = path.read_bytes()
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {**SECURITY_HEADERS, "ETag": etag, "Cache-Control": "no-cache"}  # revalidate: cheap 304s
    if request.headers.get("If-None-Match") == etag:
        return web.Response(status=304, headers=headers)
    content_type = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return web.Response(body=body, headers={**headers, "Content-Type": content_type})


async def index(request: web.Request) -> web.StreamResponse:
    return file_response(request, STATIC / "index.html")


async def asset(request: web.Request) -> web.StreamResponse:
    found = static_file(request.match_info["path"])
    if found is None:
        return web.json_response(
            {"error": {"code": "route_not_found", "message": "No such file", "details": None}}, status=404
        )
    return file_response(request, found)


async def to_index(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound("/ui/")


def install(faust_app: faust.App) -> None:
    """Serve the console at /ui on this worker's web server (call before the worker starts)."""
    router = faust_app.web.web_app.router
    router.add_get("/ui", to_index)
    router.add_get("/ui/", index)
    router.add_get("/ui/{path:.+}", asset)
