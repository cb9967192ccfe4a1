"""A newcomer's first commands: clear one-line refusals, a port bound before anything is said,
read-only commands that never create a database, and help and output that read right."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from modelfaucet import __version__
from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import developers
from tests.conftest import free_port, postgres_server_url

PASSWORD = "hunter2-not-a-real-password"


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        k: v for k, v in os.environ.items() if not k.startswith(("MODELFAUCET_", "STRIPE_", "ADMIN_", "DATABASE_URL"))
    }
    environment.update(env)
    return subprocess.run(
        [sys.executable, "-m", "modelfaucet", *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_refused_in_one_line(result: subprocess.CompletedProcess[str], expected: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert expected in result.stderr, output
    assert "Traceback" not in output and 'File "' not in output
    assert PASSWORD not in output


SRC_VERSIONS = Path(__file__).resolve().parents[2] / "src/modelfaucet/adapters/db/migrations/versions"

COMMANDS = [
    ["reconcile"],
    ["reports", "usage"],
    ["audit", "verify"],
    ["db", "upgrade"],
    ["seed"],
    ["serve"],
    ["secrets", "rotate"],
    ["stripe", "sync", "--dry-run"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: "-".join(command))
def test_every_command_names_an_unreachable_database_without_its_password_or_a_traceback(
    tmp_path: Path, command: list[str]
) -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/nope"
    result = run(command, tmp_path, DATABASE_URL=url, MODELFAUCET_SECRET_KEY="k" * 43)
    assert_refused_in_one_line(result, f"cannot connect to postgresql://postgres:***@127.0.0.1:{port}/nope")
    assert "not migrated" not in result.stderr


def test_a_database_that_does_not_exist_on_a_running_server_is_named(tmp_path: Path) -> None:
    server = make_url(postgres_server_url())
    missing = f"mf_missing_{uuid.uuid4().hex[:12]}"
    url = server.set(database=missing, password=PASSWORD).render_as_string(hide_password=False)
    for command in (["reconcile"], ["db", "upgrade"]):
        assert_refused_in_one_line(run(command, tmp_path, DATABASE_URL=url), f'database "{missing}" does not exist')


@pytest.mark.parametrize("command", [["reconcile"], ["reports", "usage"], ["audit", "verify"]], ids=lambda c: c[0])
def test_a_read_only_command_refuses_a_sqlite_file_that_does_not_exist_and_creates_none(
    tmp_path: Path, command: list[str]
) -> None:
    result = run(command, tmp_path)  # the default: modelfaucet.sqlite3 in the working directory
    assert_refused_in_one_line(result, f"no database at {tmp_path / 'modelfaucet.sqlite3'}")
    assert list(tmp_path.iterdir()) == []


def test_serve_on_a_taken_port_refuses_before_announcing_or_writing_the_demo_data(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mf.sqlite3'}"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(["serve", "--port", str(port), "--demo"], tmp_path, DATABASE_URL=url)
    assert_refused_in_one_line(result, f"cannot listen on 127.0.0.1:{port}")
    assert "listening" not in result.stdout
    assert "demo data" not in result.stdout
    database = Database.from_url(url)
    with database.read() as conn:
        assert conn.execute(select(func.count()).select_from(developers)).scalar_one() == 0
    database.dispose()


def test_version_prints_the_package_version(tmp_path: Path) -> None:
    result = run(["--version"], tmp_path)
    assert (result.returncode, result.stdout.strip()) == (0, f"modelfaucet {__version__}")


def test_serve_help_shows_demo_as_a_flag_that_takes_no_value(tmp_path: Path) -> None:
    result = run(["serve", "--help"], tmp_path)
    assert result.returncode == 0
    [demo_line] = [line for line in result.stdout.splitlines() if "--demo" in line]
    assert "<bool>" not in result.stdout
    assert demo_line.split()[0] == "--demo" and "A flag" in result.stdout


def test_db_upgrade_names_the_migrations_it_applied_then_says_nothing_was_pending(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mf.sqlite3'}"
    first = run(["db", "upgrade"], tmp_path, DATABASE_URL=url)
    assert first.returncode == 0, first.stderr
    migrations = len(list((SRC_VERSIONS).glob("0*.py")))
    assert first.stdout.startswith(f"applied {migrations} migrations:")
    assert "  0001 initial schema" in first.stdout
    second = run(["db", "upgrade"], tmp_path, DATABASE_URL=url)
    assert second.stdout.strip() == "nothing to apply: the database is at the latest migration"


def test_counts_are_pluralised_one_row_many_rows(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'mf.sqlite3'}"
    assert run(["seed"], tmp_path, DATABASE_URL=url).returncode == 0
    one = run(["reports", "revenue", "-o", str(tmp_path / "revenue.csv")], tmp_path, DATABASE_URL=url)
    assert "wrote1rowto" in "".join(one.stderr.split())  # Rich wraps the line at the terminal width
    none = run(["reports", "payouts", "-o", str(tmp_path / "payouts.csv")], tmp_path, DATABASE_URL=url)
    assert "wrote0rowsto" in "".join(none.stderr.split())
    chain = run(["audit", "verify"], tmp_path, DATABASE_URL=url)
    assert "audit chain intact: " in chain.stdout and " 1 rows" not in chain.stdout
