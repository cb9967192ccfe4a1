"""Two test runs on one machine never share a PostgreSQL database."""

from __future__ import annotations

from sqlalchemy.engine import make_url

from tests.conftest import _pg_base_url


def test_each_run_works_in_a_database_of_its_own(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        assert "pytest" in db_url, "SQLite tests use a file of their own, under pytest's tmp_path"
        return
    base = make_url(_pg_base_url()).database or "test"
    name = make_url(db_url).database or ""
    assert name != base, "a run must never truncate the configured database itself"
    assert name.startswith(f"{base}_run_") and len(name) > len(base) + 5
