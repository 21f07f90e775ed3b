"""Alembic environment: shared by both stores (services.common.db.migrate runs it)."""

from services.common.db import run_migration_environment

run_migration_environment()
