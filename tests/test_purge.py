"""Retention purge: dossiers whose visible_until has passed are deleted (and only those), in
short transactions; the ingest service purges by itself every DOSIS_PURGE_INTERVAL seconds
and survives a failing database; `dosis purge` runs one by hand."""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

import grpc
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import Session

from dosis.v1 import ingest_pb2, ingest_pb2_grpc
from services.cli import main as dosis_cli
from services.ingest.purge import PeriodicPurge
from services.ingest.validation import validate_status
from services.store import repository
from services.store.audit import AuditRow
from services.store.dossiers import DossierStore
from services.store.engine import make_engine, migrate
from services.store.purge import purge_batches, purge_expired
from tests.conftest import start_stack
from tests.helpers import UTC, bearer, push_request, status, wait_until

T0 = datetime(2019, 6, 1, 12, 0, tzinfo=UTC)  # the seeds are validated as of then
SUPPLIER = "PURGE-TEST"


def seed(engine, untils: dict[str, datetime | None]) -> None:
    """One dossier per name, with that visible_until (None: none), stored as of T0."""
    items = []
    for name, until in untils.items():
        fields = {} if until is None else {"visible_until": until}
        items.append((SUPPLIER, validate_status(status(dossier=name, when=T0 - timedelta(hours=1), **fields), now=T0)))
    with Session(engine) as session, session.begin():
        repository.upsert_many(session, items, T0)


def remaining(engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(sa.text("SELECT dossier_id FROM dossiers ORDER BY dossier_id")).scalars())


def test_only_expired_dossiers_are_purged(stores):
    engine = stores.dossiers
    seed(engine, {
        "PAST": T0 + timedelta(hours=1),
        "AT-NOW": T0 + timedelta(hours=2),  # hidden from reads at that very moment: purged too
        "LATER": T0 + timedelta(hours=3),
        "NEVER": None,
    })
    assert purge_expired(engine, T0 + timedelta(hours=2)) == 2
    assert remaining(engine) == ["LATER", "NEVER"]
    assert purge_expired(engine, T0 + timedelta(hours=2)) == 0
    assert purge_expired(engine, T0 + timedelta(days=3650)) == 1
    assert remaining(engine) == ["NEVER"]


def test_a_purge_larger_than_a_batch_goes_in_several_transactions(stores):
    engine = stores.dossiers
    expired = T0 + timedelta(hours=1)
    # Ids in order of the names: every third dossier stays (one never expires, one later).
    untils = {f"B-{i:02d}": expired if i % 3 else (None if i % 2 else T0 + timedelta(days=1)) for i in range(30)}
    seed(engine, untils)
    now = T0 + timedelta(hours=1)
    counts = list(purge_batches(engine, now, batch=4, span=9))
    assert sum(counts) == 20 and max(counts) == 4 and len(counts) >= 5, counts
    assert remaining(engine) == [name for i, name in enumerate(untils) if i % 3 == 0]
    # A batch that divides the expired rows exactly, and one that takes them all at once.
    seed(engine, {f"C-{i:02d}": expired for i in range(12)})
    assert sum(purge_batches(engine, now, batch=6, span=1000)) == 12
    seed(engine, {f"D-{i:02d}": expired for i in range(12)})
    assert list(purge_batches(engine, now, batch=100, span=1000)) == [12]
    assert remaining(engine) == [name for i, name in enumerate(untils) if i % 3 == 0]
    assert list(purge_batches(engine, now)) == [0]


def test_the_ingest_service_purges_by_itself(stores, settings, tokens, loop_thread):
    """A running ingest service with a short DOSIS_PURGE_INTERVAL deletes a dossier once its
    visible_until has passed, without any call; the others stay."""
    servers = loop_thread.run(start_stack(replace(settings, purge_interval=0.2), stores))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{servers['ingest'].port}") as channel:
            ingest = ingest_pb2_grpc.IngestServiceStub(channel)
            now = datetime.now(UTC)
            for name, fields in (
                ("SHORT", {"visible_until": now + timedelta(seconds=1)}),
                ("LONG", {"visible_until": now + timedelta(days=1)}),
                ("NONE", {}),
            ):
                reply = ingest.PushStatus(push_request(status(dossier=name, **fields)),
                                          metadata=bearer(tokens.supplier("VLAIO")), timeout=10)
                assert reply.outcome == ingest_pb2.PUSH_OUTCOME_CREATED
        assert remaining(stores.dossiers) == ["LONG", "NONE", "SHORT"]
        assert wait_until(lambda: remaining(stores.dossiers) == ["LONG", "NONE"])
    finally:
        for server in servers.values():
            loop_thread.run(server.stop(grace=0.5))


def test_a_failing_purge_is_logged_and_tried_again(tmp_path, loop_thread, caplog):
    """A database error (here: a store without its schema yet) does not end the periodic
    purge: it says so in the log (the error's type only) and succeeds once the store is there."""
    caplog.set_level(logging.INFO, logger="services.ingest.purge")
    engine = make_engine(f"sqlite:///{tmp_path / 'dossiers.db'}")
    purging = PeriodicPurge(0.05)

    async def start():
        purging.start(DossierStore(engine))

    loop_thread.run(start())
    try:
        def messages() -> list[str]:
            return [r.getMessage() for r in caplog.records if r.name == "services.ingest.purge"]

        assert wait_until(lambda: len(messages()) >= 2)
        assert set(messages()) == {"purge of expired dossiers failed (OperationalError); next try in 0.05 s"}
        migrate(engine, "store")
        seed(engine, {"OLD": T0 + timedelta(days=1), "KEPT": None})
        assert wait_until(lambda: "purged 1 expired dossiers" in messages())
        assert remaining(engine) == ["KEPT"]
    finally:
        loop_thread.run(purging.stop())
        engine.dispose()


def test_dosis_purge_prints_the_count(stores, tmp_path):
    engine = stores.dossiers
    seed(engine, {"OLD-1": T0 + timedelta(days=1), "OLD-2": T0 + timedelta(days=2),
                  "FUTURE": datetime(2099, 1, 1, tzinfo=UTC), "NONE": None})
    env = {"DOSIS_STATE_DIR": str(tmp_path), "DOSIS_DATABASE_URL": engine.url.render_as_string(hide_password=False)}
    runner = CliRunner()
    result = runner.invoke(dosis_cli, ["purge"], env=env)
    assert (result.exit_code, result.stdout.strip()) == (0, "purged 2 expired dossiers"), result.output
    assert remaining(engine) == ["FUTURE", "NONE"]
    again = runner.invoke(dosis_cli, ["purge"], env=env)
    assert (again.exit_code, again.stdout.strip()) == (0, "purged 0 expired dossiers"), again.output
    # Each purge is one audit event with its count.
    with engine.connect() as connection:
        last_two = connection.execute(
            sa.select(AuditRow.service, AuditRow.rpc, AuditRow.subject, AuditRow.result_count)
            .where(AuditRow.rpc == "purge").order_by(AuditRow.seq.desc()).limit(2)
        ).all()
    assert [tuple(r) for r in last_two] == [("dosis-cli", "purge", "retention", 0), ("dosis-cli", "purge", "retention", 2)]


def test_dosis_purge_refuses_a_store_without_its_schema(tmp_path):
    env = {"DOSIS_STATE_DIR": str(tmp_path), "DOSIS_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"}
    result = CliRunner().invoke(dosis_cli, ["purge"], env=env)
    assert result.exit_code == 1 and "run `dosis migrate` first" in result.stderr
