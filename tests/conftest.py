"""Shared fixtures. Every database-backed test runs on SQLite *and* PostgreSQL.

PostgreSQL: ``MODELFAUCET_TEST_POSTGRES_URL`` names the server and a base database name
(default ``postgresql://postgres@127.0.0.1:5432/test``). Each run creates its own
database beside it (``<name>_run_<random>[_<worker>]``, so it needs CREATEDB), migrates
it once, truncates it before each test and drops it at the end: runs never collide. If
no server answers, the PostgreSQL variants skip with the reason shown — unless
``MODELFAUCET_REQUIRE_POSTGRES=1`` (set by CI), where they fail.

SQLite: one migrated template file per session, copied for each test.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from modelfaucet.adapters.db import migrate
from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.engine import make_engine, normalise_url
from modelfaucet.adapters.db.tables import metadata
from modelfaucet.config import Settings
from modelfaucet.http.app import create_app
from modelfaucet.services.context import ServiceContext
from modelfaucet.services.seed import DEMO_APP_SECRET_KEY, SeedResult, seed_demo_data

ADMIN_TOKEN = "test-admin-token-0123456789abcdef-not-a-secret"
GATEWAY_TOKEN = "test-gateway-token-0123456789abcdef-not-a-secret"
# What the demo app's backend sends to POST /v1/sessions: the seed's (fake) app secret key.
APP_KEY_HEADERS = {"Authorization": f"Bearer {DEMO_APP_SECRET_KEY}"}
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
ENGINES = ["sqlite", "postgresql"]


def _pg_base_url() -> str:
    return os.environ.get("MODELFAUCET_TEST_POSTGRES_URL") or DEFAULT_PG_URL


def _require_pg() -> bool:
    return os.environ.get("MODELFAUCET_REQUIRE_POSTGRES") == "1"


@dataclass
class _PgState:
    url: str | None = None
    error: str | None = None


@pytest.fixture(scope="session")
def _pg(worker_id: str) -> Iterator[_PgState]:
    """A migrated PostgreSQL database of this run's own (per xdist worker), dropped at the end.

    The name is the configured database's plus a random suffix, so two runs on one machine
    (two terminals, or a run beside CI) never share, truncate or drop each other's data.
    """
    base = make_url(normalise_url(_pg_base_url()))
    name = f"{base.database or 'test'}_run_{uuid.uuid4().hex[:12]}"
    if worker_id not in ("master", ""):
        name = f"{name}_{worker_id}"
    url = base.set(database=name).render_as_string(hide_password=False)
    maintenance = base.set(database="postgres")
    try:
        admin = create_engine(maintenance, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
    except Exception as exc:  # no server, no permission: reported as the skip reason
        yield _PgState(error=f"PostgreSQL at {base.render_as_string(hide_password=True)} unavailable: {exc}")
        return
    try:
        yield _PgState(url=url)
    finally:
        admin = create_engine(maintenance, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    return str(getattr(request.config, "workerinput", {}).get("workerid", "master"))


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade(engine)
    engine.dispose()  # closing the last connection checkpoints the WAL into the file
    return path


def _truncate_all(url: str) -> None:
    engine = make_engine(url)
    names = ", ".join(f'"{table.name}"' for table in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    engine.dispose()


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path, _sqlite_template: Path) -> str:
    """URL of a fresh, migrated, empty database of the parametrised engine."""
    if request.param == "sqlite":
        path = tmp_path / "modelfaucet.sqlite3"
        shutil.copyfile(_sqlite_template, path)
        return f"sqlite:///{path}"
    state: _PgState = request.getfixturevalue("_pg")
    if state.url is None:
        if _require_pg():
            pytest.fail(f"PostgreSQL tests are mandatory here (MODELFAUCET_REQUIRE_POSTGRES=1): {state.error}")
        pytest.skip(state.error or "PostgreSQL unavailable")
    _truncate_all(state.url)
    return state.url


@pytest.fixture
def engine_name(db_url: str) -> str:
    return "sqlite" if db_url.startswith("sqlite") else "postgresql"


@pytest.fixture
def database(db_url: str) -> Iterator[Database]:
    db = Database.from_url(db_url)
    yield db
    db.dispose()


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(
        database_url=db_url,
        admin_token=ADMIN_TOKEN,
        gateway_service_token=GATEWAY_TOKEN,
    )


@pytest.fixture
def ctx(database: Database, settings: Settings) -> ServiceContext:
    return ServiceContext(db=database, settings=settings)


@pytest.fixture
def seeded(ctx: ServiceContext) -> SeedResult:
    return seed_demo_data(ctx)


@pytest.fixture
def client(database: Database, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, db=database), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture
def gateway_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {GATEWAY_TOKEN}"}


def postgres_server_url() -> str:
    """The test PostgreSQL server's URL on its maintenance database ``postgres``; skip (or,
    where PostgreSQL is mandatory, fail) when no server answers."""
    base = make_url(normalise_url(_pg_base_url()))
    try:
        with socket.create_connection((base.host or "127.0.0.1", base.port or 5432), timeout=2):
            pass
    except OSError:
        if _require_pg():
            pytest.fail(f"PostgreSQL is mandatory here and does not answer at {base.host}:{base.port}")
        pytest.skip(f"no PostgreSQL server answers at {base.host}:{base.port}")
    return base.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveServer:
    base_url: str
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_live_server(
    settings: Settings, tmp_path: Path, extra_env: dict[str, str] | None = None, *, ready_within: float = 30
) -> LiveServer:
    """Run ``modelfaucet serve`` in a subprocess on a free loopback port and wait until ready."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "MODELFAUCET_", "ADMIN_"))}
    env.update(
        {
            "DATABASE_URL": settings.database_url,
            "ADMIN_TOKEN": settings.admin_token or "",
            "GATEWAY_SERVICE_TOKEN": settings.gateway_service_token or "",
            "HOST": "127.0.0.1",
            "PORT": str(port),
        }
    )
    env.update(extra_env or {})
    log_path = tmp_path / f"server-{port}.log"
    log_file = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "modelfaucet.cli", "serve"],
        env=env,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        cwd=tmp_path,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early: {log_path.read_text()}")
        try:
            if httpx.get(f"{base_url}/ready", timeout=1).status_code == 200:
                return LiveServer(base_url, process, env, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not become ready: {log_path.read_text()}")


@pytest.fixture
def live_server(settings: Settings, tmp_path: Path) -> Iterator[LiveServer]:
    server = start_live_server(settings, tmp_path)
    yield server
    server.stop()


def with_settings(settings: Settings, **changes: object) -> Settings:
    """A copy of ``settings`` with ``changes``, validated like any other settings."""
    return Settings.model_validate({**settings.model_dump(), **changes})
