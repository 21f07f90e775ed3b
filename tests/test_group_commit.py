"""The group-commit writer on SQLite and PostgreSQL: a large batch of one supplier is stored
set-based (store.bulk), anything else push by push (repository.upsert_many); both give each
status its own outcome, in order, exactly as successive pushes would."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from opentelemetry import trace

from services.ingest.validation import validate_status
from services.store import writer as writer_module
from services.store.outcomes import Outcome
from services.store.writer import GroupWriter
from tests.helpers import status

UTC = timezone.utc
T1 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
T0 = T1 - timedelta(hours=1)
T2 = T1 + timedelta(minutes=30)


def values(dossier: str, when: datetime, code: int = 3, supplier_product: str = "1502") -> dict:
    return validate_status(status(product=supplier_product, dossier=dossier, when=when, code=code))


def store_all(engine, statuses: list[tuple[str, dict]]) -> list[Outcome]:
    """Submit every status before the writer runs, so that they form one batch."""

    async def run():
        group = GroupWriter(engine, trace.NoOpTracer())
        futures = [await group.submit(supplier, v) for supplier, v in statuses]  # no wait: room
        try:
            return await asyncio.gather(*futures)
        finally:
            await group.close()

    return asyncio.run(run())


def stored(engine) -> dict[str, tuple]:
    with engine.connect() as c:
        rows = c.execute(sa.text("SELECT dossier_id, status, status_time, update_time FROM dossiers")).all()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_a_large_batch_of_one_supplier_is_stored_set_based_with_each_outcome_in_order(stores, monkeypatch):
    calls = []
    original = GroupWriter._store_set_based
    monkeypatch.setattr(GroupWriter, "_store_set_based", lambda self, *a: calls.append(len(a[1])) or original(self, *a))
    n = writer_module.SET_BASED_FROM[stores.dossiers.dialect.name] * 2
    first = store_all(stores.dossiers, [("VLAIO", values(f"B-{i}", T1)) for i in range(n)])
    assert first == [Outcome.CREATED] * n
    before = stored(stores.dossiers)

    # One of each, interleaved: same content, newer and different, older, new.
    second_batch, expected = [], []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            second_batch.append(("VLAIO", values(f"B-{i}", T1)))
            expected.append(Outcome.UNCHANGED)
        elif kind == 1:
            second_batch.append(("VLAIO", values(f"B-{i}", T2, code=5)))
            expected.append(Outcome.UPDATED)
        elif kind == 2:
            second_batch.append(("VLAIO", values(f"B-{i}", T0, code=5)))
            expected.append(Outcome.STALE)
        else:
            second_batch.append(("VLAIO", values(f"N-{i}", T1)))
            expected.append(Outcome.CREATED)
    assert store_all(stores.dossiers, second_batch) == expected
    assert calls == [n, n]  # both batches went the set-based way

    after = stored(stores.dossiers)
    for i in range(n):
        kind = i % 4
        if kind in (0, 2):
            assert after[f"B-{i}"] == before[f"B-{i}"]  # unchanged and stale: untouched
        elif kind == 1:
            assert after[f"B-{i}"][0] == 5
            assert after[f"B-{i}"][2] != before[f"B-{i}"][2]  # update_time moved
        else:
            assert f"N-{i}" in after


def test_a_batch_naming_a_dossier_twice_or_of_two_suppliers_is_stored_push_by_push(stores, monkeypatch):
    calls = []
    monkeypatch.setattr(GroupWriter, "_store_set_based", lambda self, *a: calls.append(a))
    n = writer_module.SET_BASED_FROM[stores.dossiers.dialect.name]
    repeated = [("VLAIO", values(f"R-{i}", T1)) for i in range(n)] + [("VLAIO", values("R-0", T2, code=5))]
    assert store_all(stores.dossiers, repeated) == [Outcome.CREATED] * n + [Outcome.UPDATED]
    mixed = [("VLAIO", values(f"M-{i}", T1)) for i in range(n)] + [("OMGEVING", values("M-0", T1, 3, "1519"))]
    assert store_all(stores.dossiers, mixed) == [Outcome.CREATED] * (n + 1)
    assert calls == []
    assert stored(stores.dossiers)["R-0"][0] == 5
