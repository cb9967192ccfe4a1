"""A serving process takes its startup objects out of the garbage collector's full
collections (``gc.freeze``): with them in, each full collection stopped every request of the
process for 80–90 ms (B2's p99). Test processes build many apps and must not freeze them."""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from modelfaucet.config import Settings
from modelfaucet.http import server


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    yield
    gc.unfreeze()


def test_freeze_startup_heap_moves_the_objects_alive_now_out_of_collections(unfrozen: None) -> None:
    server.freeze_startup_heap()
    assert gc.get_freeze_count() > 10_000


def test_serve_with_one_worker_freezes_after_building_the_app(
    unfrozen: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, sockets=None: seen.append(gc.get_freeze_count()))
    monkeypatch.setattr(server, "_stop_on_signals", lambda _server: None)
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'serve.sqlite3'}")
    with socket.socket() as sock:
        server.run(settings, sock, workers=1)
    assert len(seen) == 1 and seen[0] > 10_000, "the app was built and frozen before serving"


def test_a_worker_process_freezes_after_building_its_app(tmp_path: Path) -> None:
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{tmp_path / 'worker.sqlite3'}"}
    probe = "import gc, modelfaucet.http.asgi; print(gc.get_freeze_count())"
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.strip().splitlines()[-1]) > 10_000


def test_building_an_app_alone_freezes_nothing(unfrozen: None, tmp_path: Path) -> None:
    from modelfaucet.http.app import create_app

    create_app(Settings(database_url=f"sqlite:///{tmp_path / 'app.sqlite3'}"))
    assert gc.get_freeze_count() == 0
