"""The web pages' own assets (stylesheet, progressive-enhancement script), from the package."""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

from ...domain.outcomes import NotFound

router = APIRouter(include_in_schema=False)

STATIC_PREFIX = "/web/static/"
MEDIA_TYPES = {"css": "text/css; charset=utf-8", "js": "text/javascript; charset=utf-8"}
ASSETS = frozenset({"web.css", "web.js"})


@cache
def _content(name: str) -> bytes:
    return files("modelfaucet.http.web").joinpath("static", name).read_bytes()


@router.get(STATIC_PREFIX + "{name}")
def asset(name: str) -> Response:
    if name not in ASSETS:
        raise NotFound("No such asset.")
    return Response(_content(name), media_type=MEDIA_TYPES[name.rsplit(".", 1)[1]])
