"""Dossier store access: small functions taking a session.

Write path: look the dossier up by its identity (supplier, product, dossier id) under a
lock (SELECT … FOR UPDATE on PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers),
then decide the outcome. So an older status never overwrites a newer one, also when
pushes race.
Read path: scoped to one enterprise, keyset-paged on (status_time, id) newest first;
roles are matched here in code after the index narrowed to that enterprise, so that
roles can later be stored encrypted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlmodel import Session

from services.store.audit import AuditEntry, insert_events
from services.store.models import CONTENT_FIELDS, Dossier
from services.store.outcomes import Outcome, judge
from services.store.retry import retrying

UTC = timezone.utc

Key = tuple[str, str, str]  # (supplier_id, product_id, dossier_id): a dossier's identity
_READ_CHUNK = 500


def upsert_status(
    session: Session, supplier_id: str, values: dict, now: datetime | None = None, events: list[AuditEntry] = ()
) -> Outcome:
    """Store one validated status in its own transaction, with its call's audit events."""
    now = now or datetime.now(UTC)

    def transaction() -> Outcome:
        with session.begin():
            outcome = upsert_many(session, [(supplier_id, values)], now)[0]
            insert_events(session.connection(), list(events))
            return outcome

    return retrying(transaction)


def upsert_many(session: Session, items: list[tuple[str, dict]], now: datetime) -> list[Outcome]:
    """Store validated statuses (supplier id, column values) inside the caller's transaction.

    Set-based: one locked read of every dossier concerned, then one INSERT and one UPDATE
    (executemany) whatever the number of items. Large batches of one supplier take the
    quicker route of store.bulk (see store.writer). Items are applied in order, so several
    statuses of one dossier in one call behave exactly as successive pushes.
    """
    stored = _read_locked(session, {(s, v["product_id"], v["dossier_id"]) for s, v in items})
    inserts: dict[Key, dict] = {}
    updates: dict[Key, dict] = {}
    outcomes = []
    for supplier_id, values in items:
        key = (supplier_id, values["product_id"], values["dossier_id"])
        current = inserts.get(key) or updates.get(key) or stored.get(key)
        outcome = judge(current, values)
        if outcome is Outcome.CREATED:
            inserts[key] = {"supplier_id": supplier_id, **values, "update_time": now}
        elif outcome is Outcome.UPDATED:
            (inserts if key in inserts else updates)[key] = {**current, **values, "update_time": now}
        outcomes.append(outcome)
    if inserts:
        _insert(session, list(inserts.values()))
    if updates:
        _update(session, list(updates.values()))
    return outcomes


def _insert(session: Session, rows: list[dict]) -> None:
    session.execute(sa.insert(Dossier.__table__), rows)


def _update(session: Session, rows: list[dict]) -> None:
    session.execute(_UPDATE_BY_ID, [{f"v_{k}": v for k, v in row.items()} for row in rows])


_WRITTEN = (*CONTENT_FIELDS, "update_time")
_UPDATE_BY_ID = (
    sa.update(Dossier.__table__)
    .where(Dossier.__table__.c.id == sa.bindparam("v_id"))
    .values({name: sa.bindparam(f"v_{name}") for name in _WRITTEN})
)


def _read_locked(session: Session, keys: set[Key]) -> dict[Key, dict]:
    """The stored dossiers with these identities, locked until the transaction ends
    (FOR UPDATE on PostgreSQL, in a fixed order against deadlocks; SQLite's
    BEGIN IMMEDIATE already holds the write lock)."""
    table = Dossier.__table__
    columns = [table.c.id, table.c.supplier_id, table.c.product_id, table.c.dossier_id]
    columns += [table.c[name] for name in CONTENT_FIELDS]
    ordered = sorted(keys)
    found: dict[Key, dict] = {}
    for i in range(0, len(ordered), _READ_CHUNK):
        chunk = ordered[i : i + _READ_CHUNK]
        query = sa.select(*columns).order_by(table.c.supplier_id, table.c.product_id, table.c.dossier_id)
        if session.bind.dialect.name == "postgresql":
            # The identities as three arrays, joined on the identity index: one index probe per
            # key whatever the planner believes about a table that grows during a load (an IN
            # list is otherwise filtered row by row).
            keys_table = sa.func.unnest(
                *(sa.literal([k[n] for k in chunk], postgresql.ARRAY(sa.String)) for n in range(3))
            ).table_valued("s", "p", "d").render_derived(name="k")
            query = query.join(
                keys_table,
                sa.and_(
                    table.c.supplier_id == keys_table.c.s,
                    table.c.product_id == keys_table.c.p,
                    table.c.dossier_id == keys_table.c.d,
                ),
            ).with_for_update(of=table)
            queries = [query]
        else:
            # SQLite: per (supplier, product), dossier ids IN a list: answered from the
            # identity index (a row-value IN list is not).
            groups: dict[tuple[str, str], list[str]] = {}
            for supplier_id, product_id, dossier_id in chunk:
                groups.setdefault((supplier_id, product_id), []).append(dossier_id)
            queries = [
                query.where(table.c.supplier_id == s, table.c.product_id == p, table.c.dossier_id.in_(ids))
                for (s, p), ids in groups.items()
            ]
        for one in queries:
            for row in session.execute(one).mappings():
                found[(row["supplier_id"], row["product_id"], row["dossier_id"])] = dict(row)
    return found


def delete_dossier(
    session: Session, supplier_id: str, product_id: str, dossier_id: str, events: list[AuditEntry] = ()
) -> bool:
    """Remove one dossier of this supplier, with its call's audit events (which say it was
    removed: written only when it was), in one transaction; whether there was one."""
    with session.begin():
        result = session.execute(
            sa.delete(Dossier).where(
                Dossier.supplier_id == supplier_id,
                Dossier.product_id == product_id,
                Dossier.dossier_id == dossier_id,
            )
        )
        if result.rowcount > 0:
            insert_events(session.connection(), list(events))
        return result.rowcount > 0


@dataclass(frozen=True)
class Viewer:
    """Whose eyes: the roles a person holds, or only public dossiers."""

    roles: frozenset[str] = frozenset()
    public_only: bool = False

    def may_see(self, row: Dossier) -> bool:
        if row.public:
            return True
        return not self.public_only and not self.roles.isdisjoint(row.required_roles)


@dataclass(frozen=True)
class ListFilter:
    phases: tuple[int, ...] = ()
    statuses: tuple[int, ...] = ()
    product_ids: tuple[str, ...] = ()
    changed_since: datetime | None = None


Position = tuple[datetime, int]  # (status_time, id) of the last item of the previous page


def list_visible(
    session: Session,
    enterprise_number: str,
    viewer: Viewer,
    filters: ListFilter,
    after: Position | None,
    limit: int,
    now: datetime | None = None,
) -> list[Dossier]:
    """Up to `limit` dossiers the viewer may see, newest status_time first, after `after`."""
    now = now or datetime.now(UTC)
    base = _scoped(enterprise_number, filters, now)
    if viewer.public_only:
        base = base.where(Dossier.public.is_(True))
    found: list[Dossier] = []
    batch = max(limit * 2, 100)
    while len(found) < limit:
        query = base
        if after is not None:
            time, last_id = after
            query = query.where(
                sa.or_(Dossier.status_time < time, sa.and_(Dossier.status_time == time, Dossier.id < last_id))
            )
        rows = list(session.scalars(query.order_by(Dossier.status_time.desc(), Dossier.id.desc()).limit(batch)))
        found.extend(r for r in rows if viewer.may_see(r))
        if len(rows) < batch:
            break
        after = (rows[-1].status_time, rows[-1].id)
    return found[:limit]


def get_visible(
    session: Session,
    enterprise_number: str,
    viewer: Viewer,
    product_id: str,
    dossier_id: str,
    supplier_id: str = "",
    now: datetime | None = None,
) -> Dossier | None:
    query = _scoped(enterprise_number, ListFilter(), now or datetime.now(UTC)).where(
        Dossier.product_id == product_id, Dossier.dossier_id == dossier_id
    )
    if supplier_id:
        query = query.where(Dossier.supplier_id == supplier_id)
    rows = session.scalars(query.order_by(Dossier.status_time.desc(), Dossier.id.desc()))
    return next((r for r in rows if viewer.may_see(r)), None)


def _scoped(enterprise_number: str, filters: ListFilter, now: datetime):
    query = sa.select(Dossier).where(
        Dossier.enterprise_number == enterprise_number,
        sa.or_(Dossier.visible_until.is_(None), Dossier.visible_until > now),  # purge may lag; never show
    )
    if filters.phases:
        query = query.where(Dossier.phase.in_(filters.phases))
    if filters.statuses:
        query = query.where(Dossier.status.in_(filters.statuses))
    if filters.product_ids:
        query = query.where(Dossier.product_id.in_(filters.product_ids))
    if filters.changed_since is not None:
        query = query.where(Dossier.update_time >= filters.changed_since)
    return query
