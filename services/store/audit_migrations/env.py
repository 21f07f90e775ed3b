"""Alembic environment: shared by the stores (services.store.engine.migrate runs it)."""

from services.store.engine import run_migration_environment

run_migration_environment()
