"""Database engines, the UTC timestamp column type, schema migrations.

The same code runs on SQLite (embedded default, WAL) and PostgreSQL. Blocking database
work runs in threads (asyncio.to_thread) so the grpc.aio event loop never waits on I/O.
"""

from __future__ import annotations

import zlib
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import event
from sqlalchemy.engine import Engine

UTC = timezone.utc


class UtcDateTime(sa.types.TypeDecorator):
    """Aware UTC datetimes in, aware UTC datetimes out, on every database.

    SQLite has no time zones: values are stored as naive UTC so that text order is time order.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def normalize_url(url: str) -> str:
    """Accept plain postgresql:// URLs; DOSIS talks to PostgreSQL through psycopg 3."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


# Deadlines of database work, so that no call waits on the database without bound. SQLite:
# a writer waits at most SQLITE_BUSY_TIMEOUT seconds for the file's write lock. PostgreSQL:
# a statement runs at most STATEMENT_TIMEOUT_MS, waits at most LOCK_TIMEOUT_MS for a row or
# table lock, and a new connection is given CONNECT_TIMEOUT_S; a checkout waits at most
# SQLAlchemy's pool_timeout (30 s) for a free connection. Each ends in an OperationalError
# that store.retry retries and the caller then gets as an error; migrations lift the
# statement timeout (a schema change of a large table may take longer).
SQLITE_BUSY_TIMEOUT = 30
STATEMENT_TIMEOUT_MS = 60_000
LOCK_TIMEOUT_MS = 30_000
CONNECT_TIMEOUT_S = 10


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT})
        _configure_sqlite(engine)
        return engine
    options = f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c lock_timeout={LOCK_TIMEOUT_MS}"
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=10,
        connect_args={"options": options, "connect_timeout": CONNECT_TIMEOUT_S},
    )


def engine_for(url: str, beside: Engine) -> Engine:
    """An engine for the database this URL names: `beside` itself when it is that database
    (one pool, and one transaction can span both stores), else a new one."""
    return beside if beside.url == sa.engine.make_url(normalize_url(url)) else make_engine(url)


def _configure_sqlite(engine: Engine) -> None:
    # pysqlite's own transaction handling defers BEGIN and cannot take the write lock up
    # front; the SQLAlchemy-documented recipe: autocommit at the driver, our own BEGIN IMMEDIATE,
    # so that two writers serialise instead of failing on lock upgrade.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")  # an acknowledged push survives a power cut
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA temp_store=MEMORY")  # staging tables of CSV lists (store.bulk)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# Each store's migrations and the alembic version table that records them (names kept
# from the first release: existing databases know them).
_MIGRATIONS = {
    "store": Path(__file__).resolve().parent / "migrations",  # the dossier store
    "catalog": Path(__file__).resolve().parent / "catalog_migrations",
    "audit": Path(__file__).resolve().parent / "audit_migrations",  # the audit trail
}


def _alembic_config(store: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS[store]))
    config.set_main_option("version_table", f"alembic_version_{store}")
    return config


def migrate(engine: Engine, store: str) -> None:
    """Bring a store ('store' for dossiers, 'catalog', 'audit') to the newest schema with alembic.

    Run by `dosis up`'s preparation and `dosis migrate` only; services check (schema_error).
    Concurrent starters are serialised: by BEGIN IMMEDIATE on SQLite, by an advisory lock
    on PostgreSQL.
    """
    config = _alembic_config(store)
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("SET LOCAL statement_timeout = 0"))
            connection.execute(sa.text("SET LOCAL lock_timeout = 0"))  # another starter may migrate
            connection.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": zlib.crc32(store.encode())})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def schema_error(engine: Engine, store: str) -> str | None:
    """Why a service cannot use this store (not migrated, or migrated by a newer DOSIS), or None."""
    config = _alembic_config(store)
    head = ScriptDirectory.from_config(config).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(
            connection, opts={"version_table": f"alembic_version_{store}"}
        ).get_current_revision()
    if current == head:
        return None
    what = {"store": "the dossier store", "catalog": "the catalog store", "audit": "the audit store"}[store]
    if current is None:
        return f"{what} has no schema yet: run `dosis migrate` first"
    return f"{what} is at schema {current}, this DOSIS needs {head}: run `dosis migrate` with the newest DOSIS"


class SchemaNotReady(RuntimeError):
    """A service was started on a store that `dosis migrate` has not brought up to date."""


def require_schema(engine: Engine, store: str) -> None:
    if (problem := schema_error(engine, store)) is not None:
        raise SchemaNotReady(problem)


def run_migration_environment() -> None:
    """The body of both stores' alembic env.py: run on the connection migrate() hands over."""
    from alembic import context

    config = context.config
    context.configure(
        connection=config.attributes["connection"],
        version_table=config.get_main_option("version_table"),
        render_as_batch=True,  # SQLite alters tables by copy
    )
    with context.begin_transaction():
        context.run_migrations()
