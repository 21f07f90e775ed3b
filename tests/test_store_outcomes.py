"""The one outcome rule in its two forms: Python (pushes, repository.upsert_many) and SQL
(CSV lists and large group commits, store.bulk) give the same outcome for the same stored
row and candidate, and the SQL upsert writes exactly when the outcome is UPDATED."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from services.ingest.validation import validate_status
from services.store import bulk, repository
from services.store.models import CONTENT_FIELDS, Dossier, as_row
from services.store.outcomes import Outcome, judge
from tests.helpers import ENTERPRISE_A, ENTERPRISE_B, status

UTC = timezone.utc
T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
SUPPLIER = "OUTCOME-TEST"


def base(**fields) -> dict:
    fields.setdefault("visible_until", T0 + timedelta(days=400))
    return validate_status(status(ENTERPRISE_A, dossier="OUT-1", when=T0, roles=("a", "b"), **fields), now=T0)


# (name, changes to the candidate) — each against the same stored row.
CASES = [
    ("identical", {}),
    ("enterprise", {"enterprise_number": ENTERPRISE_B}),
    ("phase", {"phase": 3}),
    ("status", {"status": 14}),
    ("detail", {"detail_status": "anders"}),
    ("newer time only", {"status_time": T0 + timedelta(microseconds=1)}),
    ("older time, same content", {"status_time": T0 - timedelta(microseconds=1)}),
    ("older time, other content", {"status_time": T0 - timedelta(seconds=1), "detail_status": "x"}),
    ("url", {"reference_url": "https://example.org/other"}),
    ("email", {"reference_email": "info@example.org"}),
    ("contact", {"reference_contact": "loket"}),
    ("roles", {"required_roles": ["a", "c"]}),
    ("roles reordered", {"required_roles": ["b", "a"]}),
    ("public", {"public": True}),
    ("action", {"action_required": True, "action": "Bezorg uw rekeningnummer"}),
    ("visible_until cleared", {"visible_until": None}),
    ("visible_until moved", {"visible_until": T0 + timedelta(days=401)}),
]


def _reset(engine) -> None:
    with engine.begin() as connection:
        connection.execute(sa.delete(Dossier.__table__).where(Dossier.__table__.c.supplier_id == SUPPLIER))


def _python_form(engine, candidate: dict) -> Outcome:
    with Session(engine) as session:
        with session.begin() as transaction:
            outcome = repository.upsert_many(session, [(SUPPLIER, candidate)], T0)[0]
            transaction.rollback()
    return outcome


def _sql_form(engine, candidate: dict) -> tuple[Outcome, dict[Outcome, int], dict]:
    """Each row's outcome, the counts, and the row as stored after the upsert (rolled back)."""
    with engine.connect() as connection:
        bulk.stage(connection, [as_row(candidate)])
        transaction = connection.begin()
        try:
            each = bulk.store_each(connection, SUPPLIER, T0)[0]
            row = connection.execute(
                sa.select(Dossier.__table__).where(Dossier.__table__.c.supplier_id == SUPPLIER)
            ).mappings().one()
        finally:
            transaction.rollback()
        bulk.stage(connection, [as_row(candidate)])
        transaction = connection.begin()
        try:
            counts = bulk.store(connection, SUPPLIER, T0)
        finally:
            transaction.rollback()
    return each, counts, dict(row)


@pytest.mark.parametrize("name, changes", CASES, ids=[c[0] for c in CASES])
def test_python_and_sql_forms_agree(stores, name, changes):
    engine = stores.dossiers
    _reset(engine)
    stored = base()
    with Session(engine) as session:
        assert repository.upsert_status(session, SUPPLIER, stored, T0) is Outcome.CREATED
    candidate = {**stored, **changes}

    expected = judge(stored, candidate)
    each, counts, row = _sql_form(engine, candidate)
    assert _python_form(engine, candidate) is expected
    assert each is expected
    assert counts[expected] == 1 and sum(counts.values()) == 1
    written = candidate if expected is Outcome.UPDATED else stored
    assert {name: row[name] for name in CONTENT_FIELDS} == {name: written[name] for name in CONTENT_FIELDS}


def test_a_new_identity_is_created_in_both_forms(stores):
    engine = stores.dossiers
    _reset(engine)
    candidate = base()
    assert judge(None, candidate) is Outcome.CREATED
    assert _python_form(engine, candidate) is Outcome.CREATED
    each, counts, row = _sql_form(engine, candidate)
    assert each is Outcome.CREATED and counts[Outcome.CREATED] == 1
    assert row["dossier_id"] == "OUT-1"


def test_the_cases_cover_every_outcome_and_field():
    """The table above exercises every content field and all three outcomes over a stored row."""
    stored = base()
    outcomes = {judge(stored, {**stored, **changes}) for _, changes in CASES}
    assert outcomes == {Outcome.UNCHANGED, Outcome.UPDATED, Outcome.STALE}
    assert set(CONTENT_FIELDS) <= {field for _, changes in CASES for field in changes}
