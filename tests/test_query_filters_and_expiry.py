"""QueryService filters (phases, statuses, products, changed since), their pages and unspecified
values; expired dossiers are not returned."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import grpc
import sqlalchemy as sa

from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import ingest_pb2, query_pb2
from tests.helpers import ENTERPRISE_A, UTC, rpc_error, status, ts
from tests.query_helpers import INVALID, ROLE_A, ids, list_page, push, stream, walk

# --- filters ------------------------------------------------------------------------------


def _seed_for_filters(stack) -> datetime:
    base = datetime.now(UTC) - timedelta(hours=1)
    r = (ROLE_A,)
    stream(
        stack,
        [
            status(
                dossier="F-1",
                when=base,
                phase=pb.STATUS_PHASE_BEHANDELING_DOSSIER,
                code=pb.STATUS_CODE_IN_BEHANDELING,
                roles=r,
            ),
            status(
                dossier="F-2",
                when=base - timedelta(minutes=1),
                phase=pb.STATUS_PHASE_BESLISSING,
                code=pb.STATUS_CODE_GOEDGEKEURD,
                roles=r,
            ),
            status(
                dossier="F-3",
                product="1519",
                when=base - timedelta(minutes=2),
                phase=pb.STATUS_PHASE_BESLISSING,
                code=pb.STATUS_CODE_GEWEIGERD,
                roles=r,
            ),
            status(
                dossier="F-4",
                product="1519",
                when=base - timedelta(minutes=3),
                phase=pb.STATUS_PHASE_UITVOERING,
                code=pb.STATUS_CODE_BETAALD,
                roles=r,
            ),
        ],
    )
    push(
        stack,
        status(
            dossier="F-5",
            product="2031",
            when=base - timedelta(minutes=4),
            phase=pb.STATUS_PHASE_AFGESLOTEN,
            code=pb.STATUS_CODE_AFGESLOTEN,
            roles=r,
            reference=pb.Reference(email="info@omgeving.be"),
        ),
        supplier="OMGEVING",
    )
    return base


def filtered(stack, **filter_fields) -> list[str]:
    return ids(list_page(stack, filter=query_pb2.DossierFilter(**filter_fields)).dossiers)


def test_filters(stack):
    base = _seed_for_filters(stack)
    assert ids(list_page(stack).dossiers) == ["F-1", "F-2", "F-3", "F-4", "F-5"]

    assert filtered(stack, phases=[pb.STATUS_PHASE_BESLISSING]) == ["F-2", "F-3"]
    assert filtered(stack, phases=[pb.STATUS_PHASE_UITVOERING, pb.STATUS_PHASE_AFGESLOTEN]) == ["F-4", "F-5"]
    assert filtered(stack, phases=[pb.STATUS_PHASE_BEROEP]) == []
    assert filtered(stack, statuses=[pb.STATUS_CODE_GOEDGEKEURD, pb.STATUS_CODE_GEWEIGERD]) == ["F-2", "F-3"]
    assert filtered(stack, statuses=[pb.STATUS_CODE_IN_BEHANDELING]) == ["F-1"]
    assert filtered(stack, product_ids=["1502"]) == ["F-1", "F-2"]
    assert filtered(stack, product_ids=["1519"]) == ["F-3", "F-4"]
    assert filtered(stack, product_ids=["1502", "1519"]) == ["F-1", "F-2", "F-3", "F-4"]
    assert filtered(stack, product_ids=["9999"]) == []

    # Combinations: every field must match, any value within a field.
    assert filtered(stack, phases=[pb.STATUS_PHASE_BESLISSING], product_ids=["1519"]) == ["F-3"]
    assert filtered(
        stack,
        phases=[pb.STATUS_PHASE_BESLISSING, pb.STATUS_PHASE_UITVOERING],
        statuses=[pb.STATUS_CODE_GEWEIGERD, pb.STATUS_CODE_BETAALD, pb.STATUS_CODE_GOEDGEKEURD],
        product_ids=["1519", "2031"],
    ) == ["F-3", "F-4"]
    assert filtered(stack, statuses=[pb.STATUS_CODE_BETAALD], product_ids=["1502"]) == []

    # changed_since works on update_time (when DOSIS stored a change), not on status_time.
    time.sleep(0.05)
    mark = datetime.now(UTC)
    time.sleep(0.05)
    assert filtered(stack, changed_since=ts(mark)) == []
    push(
        stack,
        status(
            dossier="F-4",
            product="1519",
            when=base - timedelta(minutes=3, seconds=-30),
            phase=pb.STATUS_PHASE_AFGESLOTEN,
            code=pb.STATUS_CODE_AFGESLOTEN,
            roles=(ROLE_A,),
        ),
    )
    push(
        stack, status(dossier="F-6", when=base - timedelta(days=30), roles=(ROLE_A,))
    )  # old status, new to DOSIS
    # An UNCHANGED push stores nothing and so does not count as a change.
    assert (
        push(
            stack,
            status(
                dossier="F-1",
                when=base,
                phase=pb.STATUS_PHASE_BEHANDELING_DOSSIER,
                code=pb.STATUS_CODE_IN_BEHANDELING,
                roles=(ROLE_A,),
            ),
        )
        == ingest_pb2.PUSH_OUTCOME_UNCHANGED
    )
    assert filtered(stack, changed_since=ts(mark)) == ["F-4", "F-6"]
    assert filtered(stack, changed_since=ts(mark), product_ids=["1502"]) == ["F-6"]
    assert filtered(stack, changed_since=ts(mark), phases=[pb.STATUS_PHASE_AFGESLOTEN]) == ["F-4"]
    assert filtered(stack, changed_since=ts(mark - timedelta(days=1))) == [
        "F-1",
        "F-2",
        "F-3",
        "F-4",
        "F-5",
        "F-6",
    ]


def test_filter_pages_keep_the_filter(stack):
    base = datetime.now(UTC) - timedelta(hours=1)
    stream(
        stack,
        [
            status(
                dossier=f"M-{i:02d}",
                product="1519" if i % 2 else "1502",
                when=base - timedelta(minutes=i),
                roles=(ROLE_A,),
            )
            for i in range(20)
        ],
    )
    walked, pages = walk(stack, page_size=3, filter=query_pb2.DossierFilter(product_ids=["1519"]))
    assert ids(walked) == [f"M-{i:02d}" for i in range(1, 20, 2)]
    assert pages == 4


def test_unspecified_in_a_filter_is_invalid(stack):
    person = stack.as_person(ENTERPRISE_A, ROLE_A)
    for bad, field in (
        (query_pb2.DossierFilter(phases=[pb.STATUS_PHASE_UNSPECIFIED]), "filter.phases"),
        (
            query_pb2.DossierFilter(phases=[pb.STATUS_PHASE_BESLISSING, pb.STATUS_PHASE_UNSPECIFIED]),
            "filter.phases",
        ),
        (query_pb2.DossierFilter(statuses=[pb.STATUS_CODE_UNSPECIFIED]), "filter.statuses"),
        (query_pb2.DossierFilter(statuses=[999]), "filter.statuses"),
    ):
        err = rpc_error(
            stack.query.ListDossiers,
            query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A, filter=bad),
            metadata=person,
        )
        assert err.code == INVALID
        assert err.fields() == {field}

    both = rpc_error(
        stack.query.ListDossiers,
        query_pb2.ListDossiersRequest(
            enterprise_number=ENTERPRISE_A,
            filter=query_pb2.DossierFilter(phases=[0], statuses=[0]),
        ),
        metadata=person,
    )
    assert both.code == INVALID and both.fields() == {"filter.phases", "filter.statuses"}


# --- expired dossiers -------------------------------------------------------------------------


def test_expired_dossiers_are_not_returned(stack):
    until = datetime.now(UTC) + timedelta(seconds=1.5)
    push(stack, status(dossier="SHORT", roles=(ROLE_A,), visible_until=until))
    push(stack, status(dossier="SHORT-PUB", roles=(), public=True, visible_until=until))
    push(stack, status(dossier="KEEP", roles=(ROLE_A,), visible_until=datetime.now(UTC) + timedelta(days=30)))
    push(stack, status(dossier="FOREVER", roles=(ROLE_A,)))
    person = stack.as_person(ENTERPRISE_A, ROLE_A)

    def get(dossier_id):
        return query_pb2.GetDossierRequest(
            enterprise_number=ENTERPRISE_A, product_id="1502", dossier_id=dossier_id
        )

    def public():
        reply = stack.query.ListPublicDossiers(
            query_pb2.ListPublicDossiersRequest(enterprise_number=ENTERPRISE_A)
        )
        return ids(reply.dossiers)

    before = {d.dossier_id: d for d in list_page(stack).dossiers}
    assert set(before) == {"SHORT", "SHORT-PUB", "KEEP", "FOREVER"}
    assert before["SHORT"].visible_until.ToDatetime(UTC) == until
    assert not before["FOREVER"].HasField("visible_until")
    assert public() == ["SHORT-PUB"]

    time.sleep(max(0.0, (until - datetime.now(UTC)).total_seconds()) + 0.1)

    assert set(ids(list_page(stack).dossiers)) == {"KEEP", "FOREVER"}
    assert public() == []
    err = rpc_error(stack.query.GetDossier, get("SHORT"), metadata=person)
    assert err.code == grpc.StatusCode.NOT_FOUND
    assert stack.query.GetDossier(get("KEEP"), metadata=person).dossier_id == "KEEP"
    # Still in the store (purging may lag), only hidden.
    with stack.stores.dossiers.connect() as c:
        assert c.execute(sa.text("SELECT count(*) FROM dossiers WHERE dossier_id = 'SHORT'")).scalar() == 1
