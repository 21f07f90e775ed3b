"""QueryService visibility: which dossiers a person (or no one) may see, by role, enterprise and
public flag; required_roles never leave DOSIS."""

from __future__ import annotations

from datetime import datetime, timedelta

import grpc

from dosis.v1 import ingest_pb2, query_pb2
from tests.helpers import ENTERPRISE_A, ENTERPRISE_B, UTC, bearer, rpc_error, status
from tests.query_helpers import INVALID, KMO_NAME, ROLE_A, ROLE_B, ROLE_C, ids, list_page, push

# --- visibility ------------------------------------------------------------------------


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


# --- required_roles never leave DOSIS ------------------------------------------------------


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
