"""Set-based loading of many statuses of one supplier (CSV lists): the database's own speed.

A chunk of rows travels to the database as one JSON document (`encode`), so storing it is
a handful of statements whatever its size and no Python code runs per row while the
database works: one INSERT fills a temporary staging table from the document, one SELECT
counts the outcomes, one INSERT … ON CONFLICT DO UPDATE writes. That lets the caller read
the next chunk in another thread meanwhile, SQLite and PostgreSQL both working outside
the GIL.

The outcome rule is the one of repository.upsert_many (a push at a time), written as SQL:
a new identity is CREATED; an older status_time is STALE; equal content is UNCHANGED;
anything else is UPDATED. tests/test_upload.py holds both to the same answers.

Each identity comes at most once per chunk (a second status of the same dossier goes into
the next chunk), so every row of a chunk is judged against what is stored.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from services.store.models import CONTENT_FIELDS, Dossier
from services.store.repository import Outcome

# The columns of a row tuple, in order.
COLUMNS = ("product_id", "dossier_id", *CONTENT_FIELDS)
_STAGING = "dossier_load"
_TIME_COLUMNS = ("status_time", "visible_until")
_POSTGRES_TYPES = {  # how PostgreSQL reads each column from the document's text
    "phase": "smallint", "status": "smallint", "status_time": "timestamptz", "required_roles": "json",
    "public": "boolean", "action_required": "boolean", "visible_until": "timestamptz",
}


class ConcurrentWriter(sa.exc.IntegrityError):
    """Another writer created one of these dossiers while the rows were being judged: the
    transaction must be rolled back and the chunk stored again."""

    def __init__(self):
        super().__init__("another writer created a dossier of this chunk", None, Exception("concurrent insert"))


def encode(dialect: Dialect, rows: Sequence[tuple]) -> str:
    """Row tuples (COLUMNS order, validated values) → the chunk's JSON document, each value
    in the form the database stores (SQLite: SQLAlchemy's own text forms, so staged and
    stored values compare equal). Runs in the reading thread: this is the per-row work."""
    as_time = _stored_time(dialect)
    time_a, time_b = (COLUMNS.index(c) for c in _TIME_COLUMNS)
    roles = COLUMNS.index("required_roles")
    document = []
    for row in rows:
        row = list(row)
        row[time_a] = as_time(row[time_a])
        if row[time_b] is not None:
            row[time_b] = as_time(row[time_b])
        row[roles] = _roles_json(tuple(row[roles]))  # JSON text inside the document: stored as is
        document.append(row)
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def _stored_time(dialect: Dialect):
    if dialect.name != "sqlite":
        return datetime.isoformat
    # SQLAlchemy's SQLite text form of a (naive UTC) time is ISO with a space and always six
    # decimals: isoformat says the same, about three times quicker. A test holds them equal.
    return lambda value: value.replace(tzinfo=None).isoformat(" ", "microseconds")


@functools.lru_cache(maxsize=4096)  # a list repeats a handful of role sets
def _roles_json(roles: tuple[str, ...]) -> str:
    return json.dumps(list(roles))  # SQLAlchemy's JSON serializer: json.dumps as is


def load(connection: Connection, supplier_id: str, document: str, now: datetime) -> dict[Outcome, int]:
    """Store a chunk (see encode) of one supplier inside the caller's transaction; the
    number of rows per outcome."""
    postgres = connection.dialect.name == "postgresql"
    params = {"supplier": supplier_id}
    connection.execute(sa.text(_create_staging(postgres)))
    connection.execute(sa.text(_fill_staging(postgres)), {"document": document})
    counts = _judge(connection, params, postgres)
    written = connection.execute(
        sa.text(_upsert_sql(postgres)), {**params, "now": _bind_processor(connection.dialect, "update_time")(now)}
    )
    if postgres:
        # The stored rows were locked while judged; a row another writer created since would
        # make the counts wrong. It shows as a conflict here (xmax ≠ 0): judge again.
        inserted = written.scalars().all()
        created, updated = counts[Outcome.CREATED], counts[Outcome.UPDATED]
        if sum(inserted) != created or len(inserted) != created + updated:
            raise ConcurrentWriter()
    connection.execute(sa.text(f"DELETE FROM {_STAGING}"))
    return counts


def _create_staging(postgres: bool) -> str:
    if postgres:
        return (
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} ON COMMIT DELETE ROWS AS "
            f"SELECT 0 AS ord, {', '.join(COLUMNS)} FROM dossiers WITH NO DATA"
        )
    # SQLite: untyped columns keep the values as given; they are the stored forms already.
    return f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} (ord, {', '.join(COLUMNS)})"


def _fill_staging(postgres: bool) -> str:
    if postgres:
        values = [f"(e ->> {i})::{_POSTGRES_TYPES.get(c, 'text')}" for i, c in enumerate(COLUMNS)]
        source = "json_array_elements(CAST(:document AS json)) WITH ORDINALITY AS r(e, ord)"
    else:
        values = [f"json_extract(e.value, '$[{i}]')" for i in range(len(COLUMNS))]
        source = "json_each(:document) AS e"
    ordinal = "r.ord" if postgres else "e.key"
    return f"INSERT INTO {_STAGING} (ord, {', '.join(COLUMNS)}) SELECT {ordinal}, {', '.join(values)} FROM {source}"


def _identity(a: str, b: str) -> str:
    return f"{a}.supplier_id = :supplier AND {a}.product_id = {b}.product_id AND {a}.dossier_id = {b}.dossier_id"


def _same_content(new: str, old: str, postgres: bool) -> str:
    """SQL: the staged row `new` has the stored row `old`'s content (NULL-safe; JSON as text)."""
    parts = []
    for name in CONTENT_FIELDS:
        if name == "visible_until":
            parts.append(f"{new}.{name} IS NOT DISTINCT FROM {old}.{name}" if postgres else f"{new}.{name} IS {old}.{name}")
        elif name == "required_roles" and postgres:
            parts.append(f"{new}.{name}::text = {old}.{name}::text")  # json has no equality
        else:
            parts.append(f"{new}.{name} = {old}.{name}")
    return " AND ".join(parts)


def _judge(connection: Connection, params: dict, postgres: bool) -> dict[Outcome, int]:
    if postgres:
        # Lock the stored rows first, in a fixed order against deadlocks (as repository does).
        connection.execute(
            sa.text(f"SELECT d.id FROM dossiers d JOIN {_STAGING} s ON {_identity('d', 's')} "
                    "ORDER BY d.id FOR UPDATE OF d"),
            params,
        )
    created, stale, unchanged, total = connection.execute(
        sa.text(
            "SELECT "
            "coalesce(sum(CASE WHEN d.id IS NULL THEN 1 ELSE 0 END), 0), "
            "coalesce(sum(CASE WHEN s.status_time < d.status_time THEN 1 ELSE 0 END), 0), "
            f"coalesce(sum(CASE WHEN s.status_time >= d.status_time AND {_same_content('s', 'd', postgres)} "
            "THEN 1 ELSE 0 END), 0), "
            "count(*) "
            f"FROM {_STAGING} s LEFT JOIN dossiers d ON {_identity('d', 's')}"
        ),
        params,
    ).one()
    return {
        Outcome.CREATED: created,
        Outcome.STALE: stale,
        Outcome.UNCHANGED: unchanged,
        Outcome.UPDATED: total - created - stale - unchanged,
    }


def _upsert_sql(postgres: bool) -> str:
    assignments = ", ".join(f"{name} = excluded.{name}" for name in (*CONTENT_FIELDS, "update_time"))
    return (
        f"INSERT INTO dossiers (supplier_id, {', '.join(COLUMNS)}, update_time) "
        f"SELECT :supplier, {', '.join('s.' + c for c in COLUMNS)}, :now FROM {_STAGING} s "
        "WHERE true ORDER BY s.ord "  # WHERE: SQLite's parser needs one before ON CONFLICT
        f"ON CONFLICT (supplier_id, product_id, dossier_id) DO UPDATE SET {assignments} "
        "WHERE excluded.status_time >= dossiers.status_time AND NOT "
        f"({_same_content('excluded', 'dossiers', postgres)})"
        + (" RETURNING (xmax = 0)" if postgres else "")
    )


def _bind_processor(dialect: Dialect, column: str):
    """What SQLAlchemy does to a value of this column before the driver sees it."""
    column_type = Dossier.__table__.c[column].type
    return column_type.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)
