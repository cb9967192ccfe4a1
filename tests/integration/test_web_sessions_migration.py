"""Migration 0010 on both databases: portal sessions from before it are ended, operator
sessions are kept, and the new column refers to a developer token (and downgrades again)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from modelfaucet.adapters.db import migrate
from modelfaucet.adapters.db.engine import make_engine
from tests.integration.old_schema import database_at

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
def pre_0010_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty database migrated only up to 0009 (web sessions without their token)."""
    with database_at(db_url, tmp_path, "0009") as url:
        yield url


def _session_row(id_hash: str, principal: str, subject: str) -> dict[str, object]:
    return {
        "id_hash": id_hash,
        "principal": principal,
        "subject": subject,
        "csrf_secret": "c" * 32,
        "created_at": NOW,
        "last_seen_at": NOW,
        "expires_at": NOW + timedelta(hours=1),
    }


def test_0010_ends_the_portal_sessions_that_do_not_know_their_token_and_keeps_the_operators(
    pre_0010_url: str,
) -> None:
    engine = make_engine(pre_0010_url)
    try:
        old = sa.Table("web_sessions", sa.MetaData(), autoload_with=engine)
        assert "developer_token_id" not in old.c
        with engine.begin() as conn:
            conn.execute(
                sa.insert(old),
                [_session_row("a" * 64, "operator", "alice"), _session_row("b" * 64, "developer", "dev-1")],
            )
        migrate.upgrade(engine)
        new = sa.Table("web_sessions", sa.MetaData(), autoload_with=engine)
        with engine.connect() as conn:
            kept = conn.execute(sa.select(new.c.id_hash, new.c.principal, new.c.developer_token_id)).all()
        assert [tuple(row) for row in kept] == [("a" * 64, "operator", None)]
        assert new.c.developer_token_id.nullable
        assert [(fk.parent.name, fk.column.table.name, fk.column.name) for fk in new.foreign_keys] == [
            ("developer_token_id", "developer_tokens", "id")
        ]
        # and back: the column goes, the operator's session (and its CHECK) stays
        _downgrade(engine, "0009")
        back = sa.Table("web_sessions", sa.MetaData(), autoload_with=engine)
        assert "developer_token_id" not in back.c
        with engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(back)).scalar_one() == 1
        with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
            conn.execute(sa.insert(back).values(**_session_row("c" * 64, "nobody", "x")))
    finally:
        engine.dispose()


def _downgrade(engine: sa.Engine, revision: str) -> None:
    from alembic import command

    config = migrate.alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)
