"""ASGI entry for multi-worker serving: each worker process builds the app from the environment on import."""

from __future__ import annotations

from ..config import load_settings
from ..logs import configure_logging
from .app import create_app
from .server import freeze_startup_heap

_settings = load_settings()
configure_logging(_settings)  # a worker process starts with no logging configured
app = create_app(_settings)
freeze_startup_heap()
