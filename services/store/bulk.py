"""Set-based loading of many statuses of one supplier: the database's own speed.

Used for CSV lists (services/ingest/csv_batch.py) and for large group commits of one
supplier, a stream mostly (services/store/writer.py).

A chunk is stored in two steps, so that a caller can overlap them with reading the next
chunk:
- `stage`: the rows go into a temporary staging table by the driver's fastest route
  (COPY on PostgreSQL, one executemany of plain tuples on SQLite), outside any transaction
  on the store. This is the part with Python work per row.
- `store` (or `store_each`, which gives every row's outcome): in the caller's transaction,
  one SELECT judges the rows and one INSERT … ON CONFLICT DO UPDATE writes, whatever the
  number of rows. The database does
  this alone (SQLite's C code, PostgreSQL's own process): no Python runs per row, so
  another thread can read the next chunk meanwhile.

The outcome rule is store.outcomes's, in its SQL form (a push at a time judges in Python).

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

from services.store.models import CONTENT_FIELDS, FIELDS, Dossier
from services.store.outcomes import Outcome, changes_sql, verdict_sql

_STAGING = "dossier_load"
_SQLITE_SLICE = 1000  # rows per upsert statement on SQLite (see store)
_STATUS_TIME, _ROLES, _VISIBLE_UNTIL = (FIELDS.index(c) for c in ("status_time", "required_roles", "visible_until"))
assert _STATUS_TIME < _ROLES < _VISIBLE_UNTIL == len(FIELDS) - 1  # the order stage() relies on


class ConcurrentWriter(sa.exc.IntegrityError):
    """Another writer created one of these dossiers while the rows were being judged: the
    transaction must be rolled back and the chunk stored again."""

    def __init__(self):
        super().__init__("another writer created a dossier of this chunk", None, Exception("concurrent insert"))


def stage(connection: Connection, rows: Sequence[tuple]) -> None:
    """Put row tuples (models.as_row: FIELDS order, validated values, distinct identities) in the staging
    table of this connection, replacing what it held. Outside a transaction on the store."""
    driver = connection.connection.driver_connection
    if connection.dialect.name == "postgresql":
        with driver.cursor() as cursor:
            cursor.execute(
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} AS "
                f"SELECT 0 AS ord, {', '.join(FIELDS)} FROM dossiers WITH NO DATA"
            )
            cursor.execute(f"TRUNCATE {_STAGING}")
            with cursor.copy(f"COPY {_STAGING} (ord, {', '.join(FIELDS)}) FROM STDIN") as copy:
                for ordinal, row in enumerate(rows):
                    copy.write_row((ordinal, *row[:_ROLES], _roles_json(tuple(row[_ROLES])), *row[_ROLES + 1 :]))
        driver.commit()
        return
    # SQLite: the temporary database only (kept in memory, see services.store.engine), so the
    # store's write lock is not taken. Untyped columns keep the values as given: the forms
    # SQLAlchemy itself stores, so that staged and stored values compare equal.
    driver.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGING} ({', '.join(FIELDS)})")
    driver.execute("BEGIN")
    try:
        driver.execute(f"DELETE FROM {_STAGING}")
        driver.executemany(
            f"INSERT INTO {_STAGING} VALUES ({', '.join('?' * len(FIELDS))})",
            [
                (*row[:_STATUS_TIME], _sqlite_time(row[_STATUS_TIME]), *row[_STATUS_TIME + 1 : _ROLES],
                 _roles_json(tuple(row[_ROLES])), *row[_ROLES + 1 : _VISIBLE_UNTIL],
                 None if row[_VISIBLE_UNTIL] is None else _sqlite_time(row[_VISIBLE_UNTIL]))
                for row in rows
            ],
        )
        driver.execute("COMMIT")
    except BaseException:
        driver.execute("ROLLBACK")
        raise


def _sqlite_time(value: datetime) -> str:
    # SQLAlchemy's SQLite text form of a (naive UTC) time is ISO with a space and always six
    # decimals: isoformat says the same, about three times quicker. A test holds them equal.
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


@functools.lru_cache(maxsize=4096)  # a list repeats a handful of role sets
def _roles_json(roles: tuple[str, ...]) -> str:
    return json.dumps(list(roles))  # SQLAlchemy's JSON serializer: json.dumps as is


def store(connection: Connection, supplier_id: str, now: datetime) -> dict[Outcome, int]:
    """Write the staged rows as the supplier's, inside the caller's transaction; the number
    of rows per outcome."""
    counts = _judge(connection, {"supplier": supplier_id}, per_row=False)
    _write(connection, supplier_id, now, counts)
    return counts


def store_each(connection: Connection, supplier_id: str, now: datetime) -> list[Outcome]:
    """As store, but each staged row's outcome, in the order they were staged (the group
    commit answers every push)."""
    outcomes = _judge(connection, {"supplier": supplier_id}, per_row=True)
    counts = dict.fromkeys(Outcome, 0)
    for outcome in outcomes:
        counts[outcome] += 1
    _write(connection, supplier_id, now, counts)
    return outcomes


def _write(connection: Connection, supplier_id: str, now: datetime, counts: dict[Outcome, int]) -> None:
    postgres = connection.dialect.name == "postgresql"
    params = {"supplier": supplier_id, "now": _bind_processor(connection.dialect, "update_time")(now)}
    if postgres:
        created, written = connection.execute(sa.text(
            f"WITH w AS ({_upsert_sql(postgres)}) SELECT count(*) FILTER (WHERE created), count(*) FROM w"
        ), params).one()
        # The stored rows were locked while judged; a row another writer created since would
        # make the counts wrong. It shows as a conflict here (xmax ≠ 0): judge again.
        if created != counts[Outcome.CREATED] or written != counts[Outcome.CREATED] + counts[Outcome.UPDATED]:
            raise ConcurrentWriter()
    else:
        # SQLite keeps a copy of every page a statement changes until it ends (its statement
        # journal, in memory): in a large table that is a page or two per row. Slices of
        # rows bound that memory; the transaction is still the whole chunk.
        first, last = connection.execute(sa.text(f"SELECT min(rowid), max(rowid) FROM {_STAGING}")).one()
        upsert = sa.text(_upsert_sql(postgres, sliced=True))
        for start in range(first or 0, (last or -1) + 1, _SQLITE_SLICE):
            connection.execute(upsert, {**params, "first": start, "last": start + _SQLITE_SLICE - 1})


def _identity(a: str, b: str) -> str:
    return f"{a}.supplier_id = :supplier AND {a}.product_id = {b}.product_id AND {a}.dossier_id = {b}.dossier_id"


def _judge(connection: Connection, params: dict, per_row: bool) -> dict[Outcome, int] | list[Outcome]:
    """The staged rows' outcomes: counted, or each in staged order. On PostgreSQL the
    stored rows are locked too, in a fixed order (by identity) against deadlocks.

    A correlated subquery per staged row, not a join: it is one probe of the identity index
    each, whatever the planner believes about a table that grows during a load (a join was
    planned as a hash of the supplier's whole share of the table, for every chunk)."""
    postgres = connection.dialect.name == "postgresql"
    verdict = (
        f"SELECT {verdict_sql('s', 'd', postgres)} FROM dossiers d WHERE {_identity('d', 's')}"
        + (" FOR UPDATE" if postgres else "")
    )
    staged = f"(SELECT * FROM {_STAGING} ORDER BY product_id, dossier_id)" if postgres else _STAGING
    judged = f"SELECT {'s.ord' if postgres else 's.rowid'} AS position, ({verdict}) AS outcome FROM {staged} s"
    if per_row:
        found = connection.execute(sa.text(judged), params).all()
        return [Outcome[outcome] if outcome else Outcome.CREATED for _, outcome in sorted(found)]  # none: new
    found = connection.execute(sa.text(f"SELECT outcome, count(*) FROM ({judged}) j GROUP BY outcome"), params).all()
    counts = dict.fromkeys(Outcome, 0)
    for outcome, count in found:
        counts[Outcome[outcome] if outcome else Outcome.CREATED] = count
    return counts


def _upsert_sql(postgres: bool, sliced: bool = False) -> str:
    assignments = ", ".join(f"{name} = excluded.{name}" for name in (*CONTENT_FIELDS, "update_time"))
    return (
        f"INSERT INTO dossiers (supplier_id, {', '.join(FIELDS)}, update_time) "
        f"SELECT :supplier, {', '.join('s.' + c for c in FIELDS)}, :now FROM {_STAGING} s "
        + ("WHERE s.rowid BETWEEN :first AND :last " if sliced else "WHERE true ")  # SQLite needs a WHERE
        + ("ORDER BY s.ord " if postgres else "")  # ids in staged order (SQLite reads in order)
        + f"ON CONFLICT (supplier_id, product_id, dossier_id) DO UPDATE SET {assignments} "
        f"WHERE {changes_sql('excluded', 'dossiers', postgres)}"
        + (" RETURNING (xmax = 0) AS created" if postgres else "")  # xmax = 0: a new row
    )


def _bind_processor(dialect: Dialect, column: str):
    """What SQLAlchemy does to a value of this column before the driver sees it."""
    column_type = Dossier.__table__.c[column].type
    return column_type.dialect_impl(dialect).bind_processor(dialect) or (lambda value: value)
