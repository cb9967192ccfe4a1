"""Interactive API docs (Swagger UI at /docs, ReDoc at /redoc) served with no CDN.

The Swagger UI and ReDoc bundles come from the installed ``fastapi-offline`` package (a
dependency; their code is not copied into this repository); the page's start-up script is our
own ``http/static/docs.js``. Every asset is same-origin, so the pages work offline and run
under a Content-Security-Policy of ``'self'`` (set by :mod:`modelfaucet.http.middleware`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from html import escape
from importlib.resources import files

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from ...domain.outcomes import NotFound

router = APIRouter(include_in_schema=False)

STATIC_PREFIX = "/docs/static/"
OPENAPI_URL = "/openapi.json"
JS = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"


@dataclass(frozen=True, slots=True)
class Asset:
    package: str
    resource: str
    media_type: str


ASSETS = {
    "swagger-ui-bundle.js": Asset("fastapi_offline", "static/swagger-ui-bundle.js", JS),
    "swagger-ui.css": Asset("fastapi_offline", "static/swagger-ui.css", CSS),
    "redoc.standalone.js": Asset("fastapi_offline", "static/redoc.standalone.js", JS),
    "docs.js": Asset("modelfaucet.http", "static/docs.js", JS),
}


@cache
def _content(name: str) -> bytes:
    asset = ASSETS[name]
    return files(asset.package).joinpath(asset.resource).read_bytes()


def _page(title: str, head: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n"
        '<link rel="icon" href="data:,">\n'
        f"{head}</head>\n<body>\n{body}"
        f'<script src="{STATIC_PREFIX}docs.js"></script>\n</body>\n</html>\n'
    )


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    return _page(
        f"{request.app.title} — Swagger UI",
        f'<link rel="stylesheet" href="{STATIC_PREFIX}swagger-ui.css">\n',
        f'<div id="swagger-ui" data-openapi-url="{OPENAPI_URL}"></div>\n'
        f'<script src="{STATIC_PREFIX}swagger-ui-bundle.js"></script>\n',
    )


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    return _page(
        f"{request.app.title} — ReDoc",
        "",
        f'<div id="redoc" data-openapi-url="{OPENAPI_URL}"></div>\n'
        f'<script src="{STATIC_PREFIX}redoc.standalone.js"></script>\n',
    )


@router.get(STATIC_PREFIX + "{name}")
def asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound("The requested resource was not found.")
    return Response(_content(name), media_type=ASSETS[name].media_type)
