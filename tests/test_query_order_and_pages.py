"""QueryService order and pagination: newest first with names and supplier filled in; page sizes,
page tokens, and pages that stay stable while data changes."""

from __future__ import annotations

import base64
import json
import math
from datetime import datetime, timedelta

from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import ingest_pb2, query_pb2
from tests.helpers import ENTERPRISE_A, ENTERPRISE_B, UTC, rpc_error, status
from tests.query_helpers import (
    HINDER_NAME, INVALID, KMO_NAME, OMGEVING_NAME, ROLE_A, ROLE_B, ROLE_PAGE, ids, list_page, push, stream,
    walk,
)


def times(dossiers) -> list[datetime]:
    return [d.status_time.ToDatetime(UTC) for d in dossiers]


def seed_many(stack, count: int, enterprise=ENTERPRISE_A, prefix="P", base: datetime | None = None):
    """`count` dossiers with status times in groups of three equal times (ties), newest first."""
    base = base or datetime.now(UTC) - timedelta(hours=1)
    messages = [
        status(
            enterprise, dossier=f"{prefix}-{i:04d}", when=base - timedelta(seconds=i // 3), roles=(ROLE_PAGE,)
        )
        for i in range(count)
    ]
    outcomes = stream(stack, messages)
    assert outcomes == [ingest_pb2.PUSH_OUTCOME_CREATED] * count
    return [m.dossier_id for m in messages]


# --- order and filled-in fields ---------------------------------------------------------


def test_newest_status_time_first_with_names_and_supplier(stack):
    now = datetime.now(UTC)
    push(stack, status(dossier="MIDDLE", when=now - timedelta(hours=2), roles=(ROLE_A,)))
    push(stack, status(dossier="NEWEST", product="1519", when=now - timedelta(minutes=1), roles=(ROLE_A,)))
    push(stack, status(dossier="OLDEST", when=now - timedelta(days=3), roles=(ROLE_A,)))
    push(
        stack,
        status(
            dossier="OMG-1",
            product="2031",
            when=now - timedelta(hours=1),
            roles=(ROLE_A,),
            reference=pb.Reference(url="https://omgeving.vlaanderen.be/x"),
        ),
        supplier="OMGEVING",
    )

    # The enterprise number in a formatted form is accepted and answered canonical.
    for form in ("0316.380.841", "BE0316380841", "0316 380 841"):
        reply = list_page(stack, form, person_enterprise=ENTERPRISE_A)
        assert ids(reply.dossiers) == ["NEWEST", "OMG-1", "MIDDLE", "OLDEST"], form
    by_id = {d.dossier_id: d for d in reply.dossiers}
    assert {d.enterprise_number for d in reply.dossiers} == {ENTERPRISE_A}
    assert by_id["NEWEST"].product_name == HINDER_NAME
    assert by_id["MIDDLE"].product_name == KMO_NAME
    assert by_id["OMG-1"].product_name == OMGEVING_NAME
    assert by_id["NEWEST"].supplier_id == by_id["MIDDLE"].supplier_id == "VLAIO"
    assert by_id["OMG-1"].supplier_id == "OMGEVING"
    assert by_id["OMG-1"].reference.url == "https://omgeving.vlaanderen.be/x"
    assert all(d.HasField("update_time") for d in reply.dossiers)

    got = stack.query.GetDossier(
        query_pb2.GetDossierRequest(enterprise_number="0316.380.841", product_id="2031", dossier_id="OMG-1"),
        metadata=stack.as_person(ENTERPRISE_A, ROLE_A),
    )
    assert (got.product_name, got.supplier_id, got.enterprise_number) == (
        OMGEVING_NAME,
        "OMGEVING",
        ENTERPRISE_A,
    )

    err = rpc_error(
        stack.query.ListDossiers,
        query_pb2.ListDossiersRequest(enterprise_number="0316.380.842"),
        metadata=stack.as_person(ENTERPRISE_A, ROLE_A),
    )
    assert err.code == INVALID and err.reason == "INVALID_ENTERPRISE_NUMBER"


# --- pagination ---------------------------------------------------------------------------


def test_pages_default_size_and_full_walk(stack):
    count = 125
    pushed = seed_many(stack, count)
    roles = (ROLE_PAGE,)

    first = list_page(stack, roles=roles)
    assert len(first.dossiers) == 50
    assert first.next_page_token != ""

    one_page = list_page(stack, roles=roles, page_size=500)
    assert len(one_page.dossiers) == count and one_page.next_page_token == ""
    expected = ids(one_page.dossiers)
    assert sorted(expected) == sorted(pushed)
    assert times(one_page.dossiers) == sorted(times(one_page.dossiers), reverse=True)
    assert ids(first.dossiers) == expected[:50]

    walked, pages = walk(stack, roles=roles, page_size=7)
    assert pages == math.ceil(count / 7)
    assert ids(walked) == expected  # every dossier exactly once, in order
    assert len(set(ids(walked))) == count


def test_pages_stay_stable_while_data_changes(stack):
    count = 126
    pushed = seed_many(stack, count)
    roles = (ROLE_PAGE,)
    now = datetime.now(UTC)
    added = []

    def insert_between(page_number: int) -> None:
        newer = status(dossier=f"NEW-{page_number}", when=now - timedelta(seconds=page_number), roles=roles)
        older = status(
            dossier=f"OLD-{page_number}", when=now - timedelta(days=2, seconds=page_number), roles=roles
        )
        stream(stack, [newer, older])
        added.extend([newer.dossier_id, older.dossier_id])
        if page_number == 2:
            # An already-seen dossier changes to a newer status: it moves to the front, behind us.
            outcome = push(
                stack, status(dossier=pushed[0], when=now, code=pb.STATUS_CODE_BESLIST, roles=roles)
            )
            assert outcome == ingest_pb2.PUSH_OUTCOME_UPDATED

    walked, _ = walk(stack, roles=roles, page_size=7, between_pages=insert_between)
    seen = ids(walked)
    assert len(seen) == len(set(seen)), "a dossier came twice"
    for dossier_id in pushed:
        assert seen.count(dossier_id) == 1, dossier_id
    assert set(seen) - set(pushed) <= set(added)
    # The older inserts sort after the current position: the walk reaches them.
    assert {d for d in added if d.startswith("OLD-")} <= set(seen)
    assert not {d for d in added if d.startswith("NEW-")} & set(seen)  # before the position: not seen
    assert times(walked) == sorted(times(walked), reverse=True)


def test_pages_skip_dossiers_the_person_may_not_see(stack):
    """Roles are matched after the database read: pages must still be full and complete."""
    base = datetime.now(UTC) - timedelta(hours=1)

    def seen_by_a(i: int) -> bool:  # a few, then long stretches the person may not see
        return i < 5 or i % 50 == 0 or i >= 240

    messages = [
        status(
            dossier=f"V-{i:03d}",
            when=base - timedelta(seconds=i),
            roles=(ROLE_A,) if seen_by_a(i) else (ROLE_B,),
        )
        for i in range(250)
    ]
    stream(stack, messages)
    visible = [f"V-{i:03d}" for i in range(250) if seen_by_a(i)]
    walked, pages = walk(stack, roles=(ROLE_A,), page_size=6)
    assert ids(walked) == visible
    assert pages == math.ceil(len(visible) / 6)
    assert ids(list_page(stack, roles=(ROLE_A,)).dossiers) == visible
    assert ids(list_page(stack, roles=(ROLE_B,), page_size=300).dossiers) == [
        f"V-{i:03d}" for i in range(250) if not seen_by_a(i)
    ]


def test_page_size_is_capped_at_500(stack):
    count = 507
    seed_many(stack, count)
    big = list_page(stack, roles=(ROLE_PAGE,), page_size=10_000)
    assert len(big.dossiers) == 500
    assert big.next_page_token != ""
    rest = list_page(stack, roles=(ROLE_PAGE,), page_size=10_000, page_token=big.next_page_token)
    assert len(rest.dossiers) == count - 500
    assert rest.next_page_token == ""
    assert not set(ids(big.dossiers)) & set(ids(rest.dossiers))


def test_bad_page_sizes_and_tokens(stack):
    seed_many(stack, 10)
    seed_many(stack, 3, enterprise=ENTERPRISE_B, prefix="B")
    roles = (ROLE_PAGE,)

    err = rpc_error(
        stack.query.ListDossiers,
        query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A, page_size=-1),
        metadata=stack.as_person(ENTERPRISE_A, *roles),
    )
    assert err.code == INVALID and "page_size" in err.fields()

    first = list_page(stack, roles=roles, page_size=3)
    token = first.next_page_token
    assert token

    # The same token continues with the same request...
    second = list_page(stack, roles=roles, page_size=3, page_token=token)
    assert not set(ids(first.dossiers)) & set(ids(second.dossiers))

    def refused(**kwargs):
        enterprise = kwargs.pop("enterprise", ENTERPRISE_A)
        return rpc_error(
            stack.query.ListDossiers,
            query_pb2.ListDossiersRequest(enterprise_number=enterprise, page_size=3, **kwargs),
            metadata=stack.as_person(enterprise, *roles),
        )

    # ...but not with another filter, nor for another enterprise.
    for err in (
        refused(page_token=token, filter=query_pb2.DossierFilter(product_ids=["1502"])),
        refused(page_token=token, filter=query_pb2.DossierFilter(phases=[pb.STATUS_PHASE_BESLISSING])),
        refused(page_token=token, enterprise=ENTERPRISE_B),
    ):
        assert err.code == INVALID
        assert err.reason == "INVALID_PAGE_TOKEN"
        assert "page_token" in err.fields()

    # A ListDossiers token is not a ListPublicDossiers token.
    err = rpc_error(
        stack.query.ListPublicDossiers,
        query_pb2.ListPublicDossiersRequest(enterprise_number=ENTERPRISE_A, page_token=token),
    )
    assert err.code == INVALID and err.reason == "INVALID_PAGE_TOKEN"

    for garbage in ("garbage", "!!!not base64!!!", token[:-4], base64.urlsafe_b64encode(b"[1,2]").decode()):
        err = refused(page_token=garbage)
        assert err.code == INVALID, garbage
        assert err.reason == "INVALID_PAGE_TOKEN", garbage


def test_tampered_page_token_is_invalid_argument_not_internal(stack):
    """Tokens are base64 JSON (readable by design): an edited one must still be INVALID_ARGUMENT."""
    seed_many(stack, 6)
    token = list_page(stack, roles=(ROLE_PAGE,), page_size=2).next_page_token
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    data["p"]["t"] = "not-a-time"
    tampered = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    err = rpc_error(
        stack.query.ListDossiers,
        query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A, page_size=2, page_token=tampered),
        metadata=stack.as_person(ENTERPRISE_A, ROLE_PAGE),
    )
    assert err.code == INVALID, f"got {err.code.name} {err.reason}"
    assert err.reason == "INVALID_PAGE_TOKEN"


def test_public_listing_pages(stack):
    base = datetime.now(UTC) - timedelta(hours=1)
    stream(
        stack,
        [
            status(dossier=f"PUB-{i:02d}", when=base - timedelta(minutes=i), public=True, roles=())
            for i in range(9)
        ]
        + [
            status(dossier=f"PRIV-{i:02d}", when=base - timedelta(minutes=i), roles=(ROLE_A,))
            for i in range(9)
        ],
    )
    out, token, pages = [], "", 0
    while True:
        page = stack.query.ListPublicDossiers(
            query_pb2.ListPublicDossiersRequest(enterprise_number=ENTERPRISE_A, page_size=4, page_token=token)
        )
        out.extend(page.dossiers)
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 3
    assert ids(out) == [f"PUB-{i:02d}" for i in range(9)]
