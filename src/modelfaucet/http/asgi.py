"""ASGI entry for multi-worker serving: builds the app from the environment on import by uvicorn."""

from __future__ import annotations

from ..config import load_settings
from .app import create_app

app = create_app(load_settings())
