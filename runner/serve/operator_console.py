"""The operator console at `/console`: plain HTML, CSS and JavaScript served by runner.

Role: static files from `runner/serve/console/` (no build step, no CDN): `index.html`,
`console.css`, `console.js`, and `socket.io.min.js`, the official socket.io-client browser
build vendored from npm as published (its licence header kept; `socket.io.LICENSE` beside it).
The page signs in with a key (kept in the tab's sessionStorage only), calls the REST API and
follows the human queue and escalations live over Socket.io.

Invariants: only the listed files are served; every response carries a Content-Security-Policy
that allows scripts, styles and connections to this origin only.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from runner.serve.identity import NotVisible

__all__ = ["router"]

FOLDER = Path(__file__).resolve().parent / "console"
FILES = {
    "index.html": "text/html; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
    "socket.io.min.js": "text/javascript; charset=utf-8",
    "socket.io.LICENSE": "text/plain; charset=utf-8",
}
HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

router = APIRouter(include_in_schema=False)
_CACHE: dict[str, tuple[bytes, str]] = {}


def _load(name: str) -> tuple[bytes, str]:
    if name not in _CACHE:
        body = (FOLDER / name).read_bytes()
        _CACHE[name] = (body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"')
    return _CACHE[name]


def _file(name: str, request: Request) -> Response:
    body, etag = _load(name)
    headers = {**HEADERS, "ETag": etag, "Cache-Control": "no-cache"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type=FILES[name], headers=headers)


@router.get("/console")
async def console_page(request: Request) -> Response:
    return _file("index.html", request)


@router.get("/console/")
async def console_slash() -> Response:
    return RedirectResponse("/console", status_code=308)


@router.get("/console/{name}")
async def console_asset(name: str, request: Request) -> Response:
    if name not in FILES:
        raise NotVisible(f"console file {name!r}")
    return _file(name, request)
