"""QueryService (DOSIS-UIT) against real servers and databases: visibility, ordering, pages, filters.

Every test runs on SQLite and PostgreSQL (the `stack` fixture). Data goes in through the
ingest service, as a supplier would push it.
"""

from __future__ import annotations

import base64
import json
import math
import time
from datetime import datetime, timedelta

import grpc
import sqlalchemy as sa

from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import ingest_pb2, query_pb2
from tests.helpers import (
    ENTERPRISE_A,
    ENTERPRISE_B,
    UTC,
    bearer,
    push_request,
    rpc_error,
    status,
    ts,
)

KMO_NAME = "KMO-portefeuille (opleiding en advies)"  # 1502, the newer IPDC title
HINDER_NAME = "Hinderpremie"  # 1519
OMGEVING_NAME = "Omgevingsvergunning voor ingedeelde inrichtingen"  # 2031

# Role strings distinctive enough to search for in raw response bytes.
ROLE_A = "Rol-Zaakvoerder-7f3a"
ROLE_B = "Rol-Boekhouder-91c2"
ROLE_C = "Rol-Stagiair-0d4e"
ROLE_PAGE = "Rol-Paginering-5b8e"

INVALID = grpc.StatusCode.INVALID_ARGUMENT


# --- helpers ----------------------------------------------------------------------------


def push(stack, message: pb.DossierStatus, supplier: str = "VLAIO") -> int:
    return stack.ingest.PushStatus(push_request(message), metadata=stack.as_supplier(supplier)).outcome


def stream(stack, messages: list[pb.DossierStatus], supplier: str = "VLAIO") -> list[int]:
    """Push many statuses over one StreamStatuses call; every item must be accepted."""
    requests = [push_request(m, request_id=f"r{i}") for i, m in enumerate(messages)]
    replies = list(stack.ingest.StreamStatuses(iter(requests), metadata=stack.as_supplier(supplier)))
    assert len(replies) == len(requests)
    rejected = [r for r in replies if r.outcome == ingest_pb2.PUSH_OUTCOME_REJECTED]
    assert not rejected, rejected[0].error
    return [r.outcome for r in replies]


def list_page(stack, enterprise=ENTERPRISE_A, roles=(ROLE_A,), *, person_enterprise=None, **request):
    return stack.query.ListDossiers(
        query_pb2.ListDossiersRequest(enterprise_number=enterprise, **request),
        metadata=stack.as_person(person_enterprise or enterprise, *roles),
    )


def walk(stack, enterprise=ENTERPRISE_A, roles=(ROLE_A,), page_size=0, between_pages=None, **request):
    """All pages of ListDossiers: (dossiers in order, number of pages)."""
    out, token, pages = [], "", 0
    while True:
        page = list_page(stack, enterprise, roles, page_size=page_size, page_token=token, **request)
        pages += 1
        out.extend(page.dossiers)
        token = page.next_page_token
        if not token:
            return out, pages
        assert len(page.dossiers) == page_size
        if between_pages is not None:
            between_pages(pages)
        assert pages < 1000, "pagination does not end"


def ids(dossiers) -> list[str]:
    return [d.dossier_id for d in dossiers]


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


# --- 1. visibility ------------------------------------------------------------------------


def test_roles_match_any_of(stack):
    push(stack, status(dossier="ROLES-AB", roles=(ROLE_A, ROLE_B)))

    assert ids(list_page(stack, roles=(ROLE_B,)).dossiers) == ["ROLES-AB"]
    assert ids(list_page(stack, roles=(ROLE_A,)).dossiers) == ["ROLES-AB"]
    assert ids(list_page(stack, roles=(ROLE_C, ROLE_B)).dossiers) == ["ROLES-AB"]
    assert list_page(stack, roles=(ROLE_C,)).dossiers == []
    assert list_page(stack, roles=()).dossiers == []
    # Exact string match: no case folding, no prefix match.
    assert list_page(stack, roles=(ROLE_A.lower(),)).dossiers == []
    assert list_page(stack, roles=(ROLE_A[:-1],)).dossiers == []


def test_public_dossier_needs_no_role(stack):
    push(stack, status(dossier="PUB-NOROLE", public=True, roles=()))
    push(stack, status(dossier="PUB-ROLE", public=True, roles=(ROLE_A,)))
    push(stack, status(dossier="PRIVATE", roles=(ROLE_A,)))

    seen = set(ids(list_page(stack, roles=(ROLE_C,)).dossiers))
    assert seen == {"PUB-NOROLE", "PUB-ROLE"}
    seen = set(ids(list_page(stack, roles=()).dossiers))
    assert seen == {"PUB-NOROLE", "PUB-ROLE"}
    got = stack.query.GetDossier(
        query_pb2.GetDossierRequest(enterprise_number=ENTERPRISE_A, product_id="1502", dossier_id="PUB-ROLE"),
        metadata=stack.as_person(ENTERPRISE_A, ROLE_C),
    )
    assert got.dossier_id == "PUB-ROLE" and got.public


def test_person_of_another_enterprise_is_denied(stack):
    push(stack, status(dossier="D-A", public=True))
    for call, request in (
        (stack.query.ListDossiers, query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A)),
        (
            stack.query.GetDossier,
            query_pb2.GetDossierRequest(enterprise_number=ENTERPRISE_A, product_id="1502", dossier_id="D-A"),
        ),
    ):
        err = rpc_error(call, request, metadata=stack.as_person(ENTERPRISE_B, "Bedrijfsleider", ROLE_A))
        assert err.code == grpc.StatusCode.PERMISSION_DENIED
        assert err.reason == "ENTERPRISE_MISMATCH"


def test_get_dossier_invisible_and_missing_look_the_same(stack):
    push(stack, status(dossier="SECRET", roles=(ROLE_A,)))
    person = stack.as_person(ENTERPRISE_A, ROLE_C)

    def get(dossier_id: str):
        return query_pb2.GetDossierRequest(
            enterprise_number=ENTERPRISE_A, product_id="1502", dossier_id=dossier_id
        )

    invisible = rpc_error(stack.query.GetDossier, get("SECRET"), metadata=person)
    missing = rpc_error(stack.query.GetDossier, get("NO-SUCH-DOSSIER"), metadata=person)
    assert invisible.code == missing.code == grpc.StatusCode.NOT_FOUND
    assert invisible.reason == missing.reason != ""
    assert invisible.message == missing.message
    # The same dossier is there for someone holding the role: the NOT_FOUND above was visibility.
    found = stack.query.GetDossier(get("SECRET"), metadata=stack.as_person(ENTERPRISE_A, ROLE_A))
    assert found.dossier_id == "SECRET"


def test_list_public_dossiers_without_any_token(stack):
    push(stack, status(dossier="PUB-1", public=True, roles=()))
    push(stack, status(dossier="PUB-2", public=True, roles=(ROLE_A,)))
    push(stack, status(dossier="PRIV-1", roles=(ROLE_A,)))
    push(stack, status(ENTERPRISE_B, dossier="PUB-OTHER-ENTERPRISE", public=True, roles=()))

    reply = stack.query.ListPublicDossiers(
        query_pb2.ListPublicDossiersRequest(enterprise_number=ENTERPRISE_A)
    )
    assert set(ids(reply.dossiers)) == {"PUB-1", "PUB-2"}
    assert all(d.public and d.enterprise_number == ENTERPRISE_A for d in reply.dossiers)
    assert reply.next_page_token == ""

    # A person token is not needed, but one that is sent must be valid.
    err = rpc_error(
        stack.query.ListPublicDossiers,
        query_pb2.ListPublicDossiersRequest(enterprise_number=ENTERPRISE_A),
        metadata=bearer("not-a-jwt"),
    )
    assert err.code == grpc.StatusCode.UNAUTHENTICATED
    # With a person token (any enterprise, any roles) the answer is the same, with product names.
    as_other = stack.query.ListPublicDossiers(
        query_pb2.ListPublicDossiersRequest(enterprise_number=ENTERPRISE_A),
        metadata=stack.as_person(ENTERPRISE_B),
    )
    assert set(ids(as_other.dossiers)) == {"PUB-1", "PUB-2"}
    assert {d.product_name for d in as_other.dossiers} == {KMO_NAME}
    err = rpc_error(
        stack.query.ListPublicDossiers, query_pb2.ListPublicDossiersRequest(enterprise_number="123")
    )
    assert err.code == INVALID and err.reason == "INVALID_ENTERPRISE_NUMBER"


def test_moved_dossier_is_seen_only_by_the_new_enterprise(stack):
    old = datetime.now(UTC) - timedelta(minutes=10)
    push(stack, status(ENTERPRISE_A, dossier="MOVE", when=old, roles=(ROLE_A,)))
    outcome = push(
        stack, status(ENTERPRISE_B, dossier="MOVE", when=old + timedelta(minutes=1), roles=(ROLE_A,))
    )
    assert outcome == ingest_pb2.PUSH_OUTCOME_UPDATED
    assert list_page(stack, ENTERPRISE_A).dossiers == []
    assert ids(list_page(stack, ENTERPRISE_B).dossiers) == ["MOVE"]


def test_get_dossier_when_two_suppliers_use_one_dossier_id(stack):
    from dosis.v1 import catalog_pb2

    admin = bearer(stack.tokens.admin("catalog-admin"))
    product = stack.catalog.GetProduct(catalog_pb2.GetProductRequest(id="2031"), metadata=admin)
    product.supplier_ids.append("VLAIO")
    stack.catalog.UpsertProduct(catalog_pb2.UpsertProductRequest(product=product), metadata=admin)
    now = datetime.now(UTC)
    push(
        stack,
        status(product="2031", dossier="SAME", when=now - timedelta(hours=1), roles=(ROLE_A,)),
        supplier="OMGEVING",
    )
    push(
        stack,
        status(product="2031", dossier="SAME", when=now - timedelta(minutes=5), roles=(ROLE_B,)),
        supplier="VLAIO",
    )
    person = stack.as_person(ENTERPRISE_A, ROLE_A, ROLE_B)

    def get(supplier_id="", metadata=person):
        return stack.query.GetDossier(
            query_pb2.GetDossierRequest(
                enterprise_number=ENTERPRISE_A, product_id="2031", dossier_id="SAME", supplier_id=supplier_id
            ),
            metadata=metadata,
        )

    assert get().supplier_id == "VLAIO"  # the newest visible match
    assert get("OMGEVING").supplier_id == "OMGEVING"
    assert get("VLAIO").supplier_id == "VLAIO"
    # The newest match is not visible to a person with only ROLE_A: the older visible one is returned.
    assert get(metadata=stack.as_person(ENTERPRISE_A, ROLE_A)).supplier_id == "OMGEVING"
    err = rpc_error(
        stack.query.GetDossier,
        query_pb2.GetDossierRequest(
            enterprise_number=ENTERPRISE_A, product_id="2031", dossier_id="SAME", supplier_id="VLAIO"
        ),
        metadata=stack.as_person(ENTERPRISE_A, ROLE_A),
    )
    assert err.code == grpc.StatusCode.NOT_FOUND
    assert sorted(d.supplier_id for d in list_page(stack, roles=(ROLE_A, ROLE_B)).dossiers) == [
        "OMGEVING",
        "VLAIO",
    ]


# --- 2. required_roles never leave DOSIS ------------------------------------------------------


def test_required_roles_are_never_returned(stack):
    push(stack, status(dossier="R-PRIV", roles=(ROLE_A, ROLE_B)))
    push(stack, status(dossier="R-PUB", roles=(ROLE_A, ROLE_C), public=True))
    person = stack.as_person(ENTERPRISE_A, ROLE_A)

    listed = stack.query.ListDossiers(
        query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A), metadata=person
    )
    got = stack.query.GetDossier(
        query_pb2.GetDossierRequest(enterprise_number=ENTERPRISE_A, product_id="1502", dossier_id="R-PRIV"),
        metadata=person,
    )
    public_anonymous = stack.query.ListPublicDossiers(
        query_pb2.ListPublicDossiersRequest(enterprise_number=ENTERPRISE_A)
    )
    public_person = stack.query.ListPublicDossiers(
        query_pb2.ListPublicDossiersRequest(enterprise_number=ENTERPRISE_A), metadata=person
    )

    assert set(ids(listed.dossiers)) == {"R-PRIV", "R-PUB"}
    assert ids(public_anonymous.dossiers) == ids(public_person.dossiers) == ["R-PUB"]
    dossiers = [*listed.dossiers, got, *public_anonymous.dossiers, *public_person.dossiers]
    assert all(len(d.required_roles) == 0 for d in dossiers)
    for reply in (listed, got, public_anonymous, public_person):
        raw = reply.SerializeToString()
        for role in (ROLE_A, ROLE_B, ROLE_C):
            assert role.encode() not in raw


# --- 3. order and filled-in fields ---------------------------------------------------------


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


# --- 4. pagination ---------------------------------------------------------------------------


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


# --- 5. filters ------------------------------------------------------------------------------


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


# --- 6. expired dossiers -------------------------------------------------------------------------


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


# --- 7. identity ---------------------------------------------------------------------------------


def test_list_dossiers_needs_a_person_token(stack):
    push(stack, status(dossier="D-1", public=True))
    request = query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A)
    get = query_pb2.GetDossierRequest(enterprise_number=ENTERPRISE_A, product_id="1502", dossier_id="D-1")

    for call, req in ((stack.query.ListDossiers, request), (stack.query.GetDossier, get)):
        assert rpc_error(call, req).code == grpc.StatusCode.UNAUTHENTICATED
        assert rpc_error(call, req, metadata=bearer("not-a-jwt")).code == grpc.StatusCode.UNAUTHENTICATED
        assert rpc_error(call, req, metadata=(("authorization", "Basic dXNlcjpwdw=="),)).code == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        supplier = rpc_error(call, req, metadata=stack.as_supplier("VLAIO"))
        assert supplier.code == grpc.StatusCode.PERMISSION_DENIED
        admin = rpc_error(call, req, metadata=bearer(stack.tokens.admin("catalog-admin", "auditor")))
        assert admin.code == grpc.StatusCode.PERMISSION_DENIED


def test_person_token_with_expired_time_is_unauthenticated(stack):
    from services.common.auth import mint_dev_token

    token = mint_dev_token(
        stack.settings,
        {"sub": "p", "dosis_enterprise": ENTERPRISE_A, "dosis_roles": [ROLE_A]},
        ttl_seconds=-120,
    )
    err = rpc_error(
        stack.query.ListDossiers,
        query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A),
        metadata=bearer(token),
    )
    assert err.code == grpc.StatusCode.UNAUTHENTICATED


def test_formatted_enterprise_claim_in_token_is_accepted(stack):
    push(stack, status(dossier="CLAIM", roles=(ROLE_A,)))
    token = stack.tokens.person("0316.380.841", ROLE_A)
    reply = stack.query.ListDossiers(
        query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A), metadata=bearer(token)
    )
    assert ids(reply.dossiers) == ["CLAIM"]
