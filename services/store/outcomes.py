"""The one outcome rule of a stored status, in its two forms.

A status for an identity not stored yet is CREATED; one older (status_time) than the stored
one is STALE and changes nothing; one with the stored content is UNCHANGED; anything else is
UPDATED. Pushes judge in Python (`judge`, repository.upsert_many); CSV lists and large group
commits judge in SQL (`verdict_sql`, `changes_sql`, store.bulk), so that no Python runs per
row. tests/test_store_outcomes.py holds both forms to the same answers on both databases.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from services.store.models import CONTENT_FIELDS


class Outcome(enum.Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    UNCHANGED = "UNCHANGED"
    STALE = "STALE"


def judge(stored: Mapping | None, values: Mapping) -> Outcome:
    """The outcome of storing `values` over the `stored` row (None: not stored)."""
    if stored is None:
        return Outcome.CREATED
    if values["status_time"] < stored["status_time"]:
        return Outcome.STALE
    if all(stored[name] == values[name] for name in CONTENT_FIELDS):
        return Outcome.UNCHANGED
    return Outcome.UPDATED


def _same_content_sql(new: str, old: str, postgres: bool) -> str:
    """SQL: row `new` has row `old`'s content (NULL-safe; JSON compared as text)."""
    parts = []
    for name in CONTENT_FIELDS:
        if name == "visible_until":
            parts.append(f"{new}.{name} IS NOT DISTINCT FROM {old}.{name}" if postgres else f"{new}.{name} IS {old}.{name}")
        elif name == "required_roles" and postgres:
            parts.append(f"{new}.{name}::text = {old}.{name}::text")  # json has no equality
        else:
            parts.append(f"{new}.{name} = {old}.{name}")
    return " AND ".join(parts)


def verdict_sql(new: str, old: str, postgres: bool) -> str:
    """SQL: 'STALE', 'UNCHANGED' or 'UPDATED' for row `new` over the stored row `old`
    (CREATED is where no stored row matched)."""
    return (
        f"CASE WHEN {new}.status_time < {old}.status_time THEN 'STALE' "
        f"WHEN {_same_content_sql(new, old, postgres)} THEN 'UNCHANGED' ELSE 'UPDATED' END"
    )


def changes_sql(new: str, old: str, postgres: bool) -> str:
    """SQL: row `new` is UPDATED over the stored row `old` (neither STALE nor UNCHANGED)."""
    return f"{new}.status_time >= {old}.status_time AND NOT ({_same_content_sql(new, old, postgres)})"
