"""The command line (SPEC §16): db upgrade, seed, reconcile — as an operator runs them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import update

from modelfaucet.adapters.db.database import Database
from modelfaucet.adapters.db.tables import accounts
from modelfaucet.services.seed import DEMO_APP_SECRET_KEY


def _run(args: list[str], db_url: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MODELFAUCET_", "STRIPE_", "ADMIN_"))}
    environment.update({"DATABASE_URL": db_url, **env})
    return subprocess.run(
        [sys.executable, "-m", "modelfaucet", *args],
        env=environment,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_seed_prints_the_ids_and_reconcile_passes_then_catches_tampering(db_url: str, tmp_path: Path) -> None:
    seeded = _run(["seed"], db_url, tmp_path)
    assert seeded.returncode == 0, seeded.stderr
    assert "demo data written" in seeded.stdout
    ids = dict(line.strip().split(": ", 1) for line in seeded.stdout.splitlines()[1:] if ": " in line)
    assert ids["public_app_id"] == "app_pub_demo"
    # The demo app's (fake) secret key, printed by every run so the walkthrough can open sessions.
    assert ids["app_secret_key"] == DEMO_APP_SECRET_KEY
    again = _run(["seed"], db_url, tmp_path)
    assert "demo data already present" in again.stdout
    assert f"end_user_wallet_id: {ids['end_user_wallet_id']}" in again.stdout
    assert f"app_secret_key: {DEMO_APP_SECRET_KEY}" in again.stdout

    clean = _run(["reconcile"], db_url, tmp_path)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "wallets: 4  balanced: 4  mismatch: 0" in clean.stdout

    db = Database.from_url(db_url)
    with db.transaction() as conn:
        conn.execute(update(accounts).where(accounts.c.id == ids["end_user_wallet_id"]).values(balance_units=1))
    db.dispose()
    broken = _run(["reconcile", "--json"], db_url, tmp_path)
    assert broken.returncode == 1
    assert '"mismatch_count": 1' in broken.stdout
    assert '"delta_usd": "-9.99999999"' in broken.stdout


def test_the_embedded_default_is_a_sqlite_file_in_the_working_directory(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "-m", "modelfaucet", "seed"],
        env=environment,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "modelfaucet.sqlite3").exists()


def test_db_upgrade_is_repeatable(db_url: str, tmp_path: Path) -> None:
    for _ in range(2):
        result = _run(["db", "upgrade"], db_url, tmp_path)
        assert result.returncode == 0, result.stderr
        assert "latest migration" in result.stdout


def test_production_mode_refuses_to_start_and_names_what_is_missing(db_url: str, tmp_path: Path) -> None:
    result = _run(["serve"], db_url, tmp_path, MODELFAUCET_ENV="production", ADMIN_TOKEN="x" * 40)
    assert result.returncode == 2
    assert "STRIPE_WEBHOOK_SECRET" in result.stderr
    assert "MODELFAUCET_SECRET_KEY" in result.stderr
    assert "ADMIN_TOKEN" not in result.stderr.split("without:")[1]


def test_the_subcommand_modules_import_downwards_never_the_main_module() -> None:
    import ast

    import modelfaucet.cli as cli_package

    package = Path(cli_package.__file__).parent
    for module in sorted(package.glob("*.py")):
        if module.name in ("main.py", "__main__.py"):
            continue
        tree = ast.parse(module.read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level == 1}
        assert "main" not in imported, f"{module.name} imports cli.main: an import circle"
