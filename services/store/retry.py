"""The one retry rule for writes that lost a race with another writer.

A transaction that another writer beat to a dossier (a unique violation: it created the
same identity between our look-up and our insert), or that the database chose as a
deadlock or serialization victim (PostgreSQL), or that found the SQLite file locked past
its timeout, is safe to run again from the start: it then reads what the winner stored.
Every write route of the store (single pushes, group commits, CSV chunks) retries through
this function, so the rule and the number of attempts live here alone.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError

ATTEMPTS = 3
# Lost races: IntegrityError (a concurrent insert of the same identity) and OperationalError
# (deadlock, serialization failure, database locked, a connection cut mid-transaction).
RETRYABLE = (IntegrityError, OperationalError)

T = TypeVar("T")


def retrying(transaction: Callable[[], T], attempts: int = ATTEMPTS) -> T:
    """Run `transaction` (which opens, does and commits one whole transaction) until it
    succeeds, at most `attempts` times; the last lost race's error is raised."""
    for attempt in range(attempts):
        try:
            return transaction()
        except RETRYABLE:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
