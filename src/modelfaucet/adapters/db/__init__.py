"""Database adapter: tables, engine, migrations and the ledger repository."""
