"""Retention: deleting the dossiers whose `visible_until` has passed.

The supplier chooses a dossier's retention (`visible_until`); reads hide a dossier from that
moment on (repository._scoped), and the purge deletes it. A dossier without `visible_until`
is never purged.

A purge walks the table by id in short transactions, so that a large purge holds no long
lock (SQLite's BEGIN IMMEDIATE blocks every writer while it lasts) and no huge transaction:
each transaction examines at most PURGE_SPAN ids and deletes at most PURGE_BATCH rows. The
walk costs one pass over the primary key per purge; an index on visible_until would let a
purge read only the expired rows (then walk by (visible_until, id) instead).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from functools import partial

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from services.store.models import Dossier
from services.store.retry import retrying

PURGE_BATCH = 2_000  # rows deleted in one transaction at most
PURGE_SPAN = 100_000  # ids examined in one transaction at most

_ID = Dossier.__table__.c.id


def _expired(now: datetime):
    # The complement of the read path's rule (visible_until > now): what no read shows any more.
    return Dossier.__table__.c.visible_until <= now


def purge_batches(
    engine: Engine, now: datetime, batch: int = PURGE_BATCH, span: int = PURGE_SPAN
) -> Iterator[int]:
    """Delete the dossiers whose visible_until is at or before `now`, one short transaction
    at a time; yields the number each transaction deleted, once it is committed. Stopping
    the iteration early leaves the rest for the next purge. Rows stored after the walk
    began (ids above its upper end) wait for the next purge too."""
    with engine.connect() as connection:
        first, last = connection.execute(sa.select(sa.func.min(_ID), sa.func.max(_ID))).one()
    if first is None:
        return
    after = first - 1  # the walk's position: every id up to it is done
    while after < last:
        after, deleted = retrying(partial(_purge_range, engine, now, after, min(after + span, last), batch))
        yield deleted


def _purge_range(engine: Engine, now: datetime, after: int, upto: int, batch: int) -> tuple[int, int]:
    """One transaction: delete the expired dossiers with ids in (after, upto], at most
    `batch` of them (the lowest ids); the new position and how many were deleted."""
    in_range = sa.and_(_ID > after, _ID <= upto, _expired(now))
    with engine.begin() as connection:
        # The id of the batch-th expired row in range, if there are that many: stop there.
        bound = connection.execute(
            sa.select(_ID).where(in_range).order_by(_ID).offset(batch - 1).limit(1)
        ).scalar()
        if bound is not None:
            upto = bound
        deleted = connection.execute(
            sa.delete(Dossier.__table__).where(_ID > after, _ID <= upto, _expired(now))
        ).rowcount
    return upto, deleted


def purge_expired(engine: Engine, now: datetime, batch: int = PURGE_BATCH, span: int = PURGE_SPAN) -> int:
    """Delete every dossier whose visible_until is at or before `now`, in short
    transactions; how many were deleted."""
    return sum(purge_batches(engine, now, batch, span))
