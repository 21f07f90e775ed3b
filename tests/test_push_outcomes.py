"""PushStatus outcomes (created, unchanged, updated, stale), a correction moving a dossier,
enterprise number forms stored canonical, and concurrent pushes keeping the newest."""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime, timedelta

import grpc
import pytest

from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import query_pb2
from tests.helpers import ENTERPRISE_A, ENTERPRISE_B, UTC, push_request, status, ts
from tests.ingest_helpers import (
    CREATED, ROLE, STALE, UNCHANGED, UPDATED, expect_error, get_dossier, list_dossiers, minutes_ago, push,
    stored_rows,
)

# --- outcomes ---------------------------------------------------------------------------


def test_push_outcomes_created_unchanged_updated_stale(stack):
    t1, t2, t0 = minutes_ago(30), minutes_ago(10), minutes_ago(60)
    first = status(when=t1, detail_status="ontvangen")

    reply = push(stack, first, "req-1")
    assert (reply.outcome, reply.request_id) == (CREATED, "req-1")
    created = get_dossier(stack)
    assert created.status_time == ts(t1)
    assert created.detail_status == "ontvangen"
    assert created.supplier_id == "VLAIO"
    assert list(created.required_roles) == []  # never returned

    reply = push(stack, first, "req-2")
    assert (reply.outcome, reply.request_id) == (UNCHANGED, "req-2")
    assert get_dossier(stack).update_time == created.update_time  # nothing was written

    newer = status(
        when=t2, code=pb.STATUS_CODE_BESLIST, phase=pb.STATUS_PHASE_BESLISSING, detail_status="beslist"
    )
    reply = push(stack, newer, "req-3")
    assert (reply.outcome, reply.request_id) == (UPDATED, "req-3")
    updated = get_dossier(stack)
    assert updated.status_time == ts(t2)
    assert (updated.phase, updated.status, updated.detail_status) == (
        pb.STATUS_PHASE_BESLISSING,
        pb.STATUS_CODE_BESLIST,
        "beslist",
    )
    assert updated.update_time.ToDatetime() > created.update_time.ToDatetime()

    older = status(
        when=t0, code=pb.STATUS_CODE_GEWEIGERD, detail_status="oud", action_required=True, action="Bel"
    )
    reply = push(stack, older, "req-4")
    assert (reply.outcome, reply.request_id) == (STALE, "req-4")
    after = get_dossier(stack)
    assert after == updated  # the stored status did not change in any field
    assert len(stored_rows(stack)) == 1


def test_request_id_may_be_empty_and_is_echoed_verbatim(stack):
    assert push(stack, status()).request_id == ""
    odd = "ünïcode id / 42 " + "x" * 100
    assert push(stack, status(), odd).request_id == odd


def test_same_content_with_roles_reordered_is_unchanged(stack):
    when = minutes_ago(5)
    assert push(stack, status(roles=("B", "A", ROLE), when=when)).outcome == CREATED
    assert push(stack, status(roles=(ROLE, "A", "B", "A"), when=when)).outcome == UNCHANGED


def test_same_status_time_other_content_is_not_stale_and_is_stored(stack):
    when = minutes_ago(5)
    push(stack, status(when=when, detail_status="eerste"))
    reply = push(stack, status(when=when, detail_status="tweede"))
    assert reply.outcome == UPDATED
    assert get_dossier(stack).detail_status == "tweede"


def test_dossier_identity_includes_product_and_supplier(stack):
    push(stack, status(product="1502", dossier="D-1"))
    assert push(stack, status(product="1519", dossier="D-1")).outcome == CREATED
    omgeving = status(product="2031", dossier="D-1", reference=pb.Reference(email="info@omgeving.be"))
    assert push(stack, omgeving, supplier="OMGEVING").outcome == CREATED
    assert [(r["supplier_id"], r["product_id"]) for r in stored_rows(stack)] == [
        ("OMGEVING", "2031"),
        ("VLAIO", "1502"),
        ("VLAIO", "1519"),
    ]


def test_uuid_product_id_of_another_supplier(stack):
    product = "00000000-0000-0000-0000-000000000006"
    assert push(stack, status(product=product), supplier="FIT").outcome == CREATED
    assert get_dossier(stack, product=product).supplier_id == "FIT"


# --- correction -------------------------------------------------------------------------


def test_newer_push_with_other_enterprise_moves_the_dossier(stack):
    push(stack, status(ENTERPRISE_A, when=minutes_ago(20)))
    assert [d.dossier_id for d in list_dossiers(stack, ENTERPRISE_A)] == ["D-1"]

    reply = push(stack, status(ENTERPRISE_B, when=minutes_ago(10)), "fix")
    assert (reply.outcome, reply.request_id) == (UPDATED, "fix")

    assert list_dossiers(stack, ENTERPRISE_A) == []
    expect_error(
        stack.query.GetDossier,
        query_pb2.GetDossierRequest(enterprise_number=ENTERPRISE_A, product_id="1502", dossier_id="D-1"),
        metadata=stack.as_person(ENTERPRISE_A, ROLE),
        code=grpc.StatusCode.NOT_FOUND,
    )
    moved = list_dossiers(stack, ENTERPRISE_B)
    assert [(d.dossier_id, d.enterprise_number) for d in moved] == [("D-1", ENTERPRISE_B)]
    assert [r["enterprise_number"] for r in stored_rows(stack)] == [ENTERPRISE_B]  # moved, not copied

    # An older push naming the old enterprise does not move it back.
    assert push(stack, status(ENTERPRISE_A, when=minutes_ago(15))).outcome == STALE
    assert list_dossiers(stack, ENTERPRISE_A) == []
    assert [d.dossier_id for d in list_dossiers(stack, ENTERPRISE_B)] == ["D-1"]


# --- enterprise number forms ------------------------------------------------------------


@pytest.mark.parametrize("written", ["0316.380.841", "BE0316380841", "0316 380 841", "0316380841"])
def test_enterprise_number_forms_are_stored_canonical(stack, written):
    when = minutes_ago(5)
    assert push(stack, status(written, when=when)).outcome == CREATED
    assert [r["enterprise_number"] for r in stored_rows(stack)] == ["0316380841"]
    listed = list_dossiers(stack, "0316380841")
    assert [d.enterprise_number for d in listed] == ["0316380841"]
    assert get_dossier(stack, "0316380841").enterprise_number == "0316380841"
    # The canonical and every other written form are the same dossier holder.
    assert push(stack, status("0316380841", when=when)).outcome == UNCHANGED
    assert push(stack, status("BE 0316.380.841", when=when)).outcome == UNCHANGED


# --- concurrency -----------------------------------------------------------------------


def test_concurrent_pushes_keep_the_newest(stack):
    """4 threads push 10 times each, in lockstep rounds, to two dossiers at once:
    D-1 gets rising rounds (each round 4 new, newer times, shuffled over the threads, so that
    four writers race to replace the same row), D-2 gets all 40 times fully shuffled (newer and
    older ones racing). After every round the stored status_time must be the newest pushed so far;
    an older writer that read before a newer one committed must not win (no lost update)."""
    threads, rounds = 4, 10
    rng = random.Random(20240601)
    base = datetime.now(UTC) - timedelta(hours=1)
    times = [base + timedelta(seconds=7 * i, microseconds=i) for i in range(threads * rounds)]
    rising = [rng.sample(times[r * threads : (r + 1) * threads], threads) for r in range(rounds)]
    shuffled = rng.sample(times, len(times))
    plan = {
        "D-1": [[rising[r][t] for r in range(rounds)] for t in range(threads)],
        "D-2": [shuffled[t::threads] for t in range(threads)],
    }
    lock = threading.Lock()
    pushed: dict[str, list[datetime]] = {"D-1": [], "D-2": []}
    outcomes: dict[str, list[int]] = {"D-1": [], "D-2": []}
    failures: list[str] = []
    lost: list[str] = []

    def check_round() -> None:  # runs in one thread, while all others wait at the barrier
        for dossier, seen in pushed.items():
            if not seen:
                continue
            try:
                stored = get_dossier(stack, dossier=dossier).status_time
            except grpc.RpcError as exc:
                failures.append(f"read {dossier}: {exc.code()} {exc.details()}")
                continue
            if stored != ts(max(seen)):
                lost.append(f"{dossier} after {len(seen)} pushes: {stored.ToDatetime()} != {max(seen)}")

    start = threading.Barrier(threads, timeout=10)
    done = threading.Barrier(threads, action=check_round, timeout=10)

    def worker(t: int) -> None:
        stub, metadata = stack.ingest, stack.as_supplier()
        try:
            for r in range(rounds):
                start.wait()
                for dossier in ("D-1", "D-2"):
                    when = plan[dossier][t][r]
                    request = push_request(status(dossier=dossier, when=when, detail_status=when.isoformat()))
                    try:
                        reply = stub.PushStatus(request, metadata=metadata, timeout=10)
                    except grpc.RpcError as exc:
                        with lock:
                            failures.append(f"{dossier}@{when}: {exc.code()} {exc.details()}")
                        continue
                    with lock:
                        pushed[dossier].append(when)
                        outcomes[dossier].append(reply.outcome)
                done.wait()
        except threading.BrokenBarrierError:
            pass
        finally:
            if failures:
                start.abort()
                done.abort()

    workers = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    started = time.monotonic()
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    elapsed = time.monotonic() - started

    assert not failures, failures
    assert not lost, lost
    for dossier in ("D-1", "D-2"):
        assert len(outcomes[dossier]) == threads * rounds
        assert outcomes[dossier].count(CREATED) == 1, dossier
        assert set(outcomes[dossier]) <= {CREATED, UPDATED, STALE}  # every time differs: never UNCHANGED
        stored = get_dossier(stack, dossier=dossier)
        assert stored.status_time == ts(max(times))
        assert stored.detail_status == max(times).isoformat()  # that same push's content, not a mix
    assert len(stored_rows(stack)) == 2
    assert elapsed < 10
