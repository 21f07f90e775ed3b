"""CatalogService over real gRPC: GetProduct, ListProducts pages, UpsertProduct (admin only, every
invalid field named), CheckProduct and ListStatusCodes."""

from __future__ import annotations

import copy
import json
import time
from datetime import datetime, timedelta

import grpc
import pytest

from dosis.v1 import catalog_pb2, ingest_pb2, query_pb2
from dosis.v1 import dossier_status_pb2 as pb
from tests.catalog_helpers import EXPECTED_IDS, NO_PRODUCT_ID, VLAIO_IRI, check_products
from tests.helpers import ENTERPRISE_A, UTC, bearer, push_request, rpc_error, status

INVALID = grpc.StatusCode.INVALID_ARGUMENT


# --- products over gRPC ----------------------------------------------------------------------


def test_get_product(stack):
    reader = stack.as_person(ENTERPRISE_A)
    product = stack.catalog.GetProduct(catalog_pb2.GetProductRequest(id="1502"), metadata=reader)
    assert product.name == "KMO-portefeuille (opleiding en advies)"
    assert list(product.supplier_ids) == ["VLAIO"]
    assert product.competent_authority == VLAIO_IRI
    assert product.active and product.HasField("update_time")
    assert stack.catalog.GetProduct(catalog_pb2.GetProductRequest(id="1001"), metadata=reader).active is False

    err = rpc_error(stack.catalog.GetProduct, catalog_pb2.GetProductRequest(id="9999"), metadata=reader)
    assert err.code == grpc.StatusCode.NOT_FOUND and err.reason == "PRODUCT_NOT_FOUND"
    err = rpc_error(stack.catalog.GetProduct, catalog_pb2.GetProductRequest(id="1502"))
    assert err.code == grpc.StatusCode.UNAUTHENTICATED


def test_list_products_pages(stack):
    reader = stack.as_supplier("WSE")
    seen, token, pages = [], "", []
    while True:
        reply = stack.catalog.ListProducts(
            catalog_pb2.ListProductsRequest(page_size=3, page_token=token), metadata=reader
        )
        pages.append(len(reply.products))
        seen.extend(reply.products)
        token = reply.next_page_token
        if not token:
            break
    assert pages == [3, 3, 1]
    check_products(seen, mapped=True)  # id order, each once, the demo feed with its mapping

    everything = stack.catalog.ListProducts(catalog_pb2.ListProductsRequest(), metadata=reader)
    assert [p.id for p in everything.products] == EXPECTED_IDS and everything.next_page_token == ""

    err = rpc_error(
        stack.catalog.ListProducts, catalog_pb2.ListProductsRequest(page_size=-3), metadata=reader
    )
    assert err.code == INVALID
    err = rpc_error(
        stack.catalog.ListProducts, catalog_pb2.ListProductsRequest(page_token="garbage"), metadata=reader
    )
    assert err.code == INVALID and err.reason == "INVALID_PAGE_TOKEN"
    assert rpc_error(stack.catalog.ListProducts, catalog_pb2.ListProductsRequest()).code == (
        grpc.StatusCode.UNAUTHENTICATED
    )


def test_list_products_tampered_page_token_is_invalid_argument(stack):
    """Tokens are base64 JSON (readable by design): an edited one must be INVALID_ARGUMENT, not INTERNAL."""
    import base64

    reader = stack.as_supplier("WSE")
    token = stack.catalog.ListProducts(
        catalog_pb2.ListProductsRequest(page_size=2), metadata=reader
    ).next_page_token
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    data["p"] = {"position": data["p"]["id"]}  # the envelope stays valid, the position does not
    tampered = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    err = rpc_error(
        stack.catalog.ListProducts,
        catalog_pb2.ListProductsRequest(page_size=2, page_token=tampered),
        metadata=reader,
    )
    assert err.code == INVALID, f"got {err.code.name} {err.reason}"
    assert err.reason == "INVALID_PAGE_TOKEN"


def _admin(stack):
    return bearer(stack.tokens.admin("catalog-admin"))


def test_upsert_product_creates_and_changes(stack):
    admin = _admin(stack)
    new = catalog_pb2.Product(
        id="7777",
        name="Testpremie",
        description="Een premie voor tests.",
        competent_authority=VLAIO_IRI,
        supplier_ids=["WSE", "VLAIO"],
        active=True,
        url="https://example.org/7777",
    )
    created = stack.catalog.UpsertProduct(catalog_pb2.UpsertProductRequest(product=new), metadata=admin)
    assert (created.id, created.name, created.active) == ("7777", "Testpremie", True)
    assert set(created.supplier_ids) == {"WSE", "VLAIO"}
    created_at = created.update_time.ToDatetime(UTC)
    assert abs(created_at - datetime.now(UTC)) < timedelta(minutes=1)

    reader = stack.as_supplier("WSE")
    got = stack.catalog.GetProduct(catalog_pb2.GetProductRequest(id="7777"), metadata=reader)
    assert got.description == "Een premie voor tests." and got.url == "https://example.org/7777"
    assert got.update_time == created.update_time

    time.sleep(0.01)
    same = stack.catalog.UpsertProduct(catalog_pb2.UpsertProductRequest(product=new), metadata=admin)
    assert same.update_time == created.update_time  # nothing changed, nothing moves
    reordered = copy.deepcopy(new)
    del reordered.supplier_ids[:]
    reordered.supplier_ids.extend(["VLAIO", "WSE"])
    assert (
        stack.catalog.UpsertProduct(
            catalog_pb2.UpsertProductRequest(product=reordered), metadata=admin
        ).update_time
        == created.update_time
    )

    changed = copy.deepcopy(new)
    changed.name = "Testpremie 2"
    changed.active = False
    updated = stack.catalog.UpsertProduct(catalog_pb2.UpsertProductRequest(product=changed), metadata=admin)
    assert updated.name == "Testpremie 2" and updated.active is False
    assert updated.update_time.ToDatetime(UTC) > created_at
    check = stack.catalog.CheckProduct(
        catalog_pb2.CheckProductRequest(product_id="7777", supplier_id="WSE"), metadata=reader
    )
    assert (check.exists, check.active, check.supplier_allowed) == (True, False, True)

    listed = stack.catalog.ListProducts(catalog_pb2.ListProductsRequest(page_size=100), metadata=reader)
    assert [p.id for p in listed.products] == sorted(EXPECTED_IDS + ["7777"])


def test_upsert_product_needs_catalog_admin(stack):
    product = catalog_pb2.Product(id="7778", name="Niet toegelaten", supplier_ids=["VLAIO"], active=True)
    request = catalog_pb2.UpsertProductRequest(product=product)
    for metadata in (
        bearer(stack.tokens.admin("auditor")),
        stack.as_supplier("VLAIO"),
        stack.as_person(ENTERPRISE_A, "catalog-admin"),
    ):
        err = rpc_error(stack.catalog.UpsertProduct, request, metadata=metadata)
        assert err.code == grpc.StatusCode.PERMISSION_DENIED
    assert rpc_error(stack.catalog.UpsertProduct, request).code == grpc.StatusCode.UNAUTHENTICATED
    err = rpc_error(
        stack.catalog.GetProduct,
        catalog_pb2.GetProductRequest(id="7778"),
        metadata=stack.as_supplier("VLAIO"),
    )
    assert err.code == grpc.StatusCode.NOT_FOUND  # nothing was stored


def test_upsert_product_names_every_invalid_field(stack):
    bad = catalog_pb2.Product(
        id="bad id!", name="   ", supplier_ids=["VLAIO", "", "X" * 65], url="https://x.example/" + "a" * 2048
    )
    err = rpc_error(
        stack.catalog.UpsertProduct, catalog_pb2.UpsertProductRequest(product=bad), metadata=_admin(stack)
    )
    assert err.code == INVALID
    assert err.fields() == {
        "product.id",
        "product.name",
        "product.supplier_ids[1]",
        "product.supplier_ids[2]",
        "product.url",
    }
    err = rpc_error(stack.catalog.UpsertProduct, catalog_pb2.UpsertProductRequest(), metadata=_admin(stack))
    assert err.code == INVALID and {"product.id", "product.name"} <= err.fields()
    # A valid id with a bad name stores nothing.
    err = rpc_error(
        stack.catalog.UpsertProduct,
        catalog_pb2.UpsertProductRequest(product=catalog_pb2.Product(id="1502", name="")),
        metadata=_admin(stack),
    )
    assert err.fields() == {"product.name"}
    kmo = stack.catalog.GetProduct(catalog_pb2.GetProductRequest(id="1502"), metadata=_admin(stack))
    assert kmo.name == "KMO-portefeuille (opleiding en advies)"


def test_added_supplier_may_push_right_away(stack):
    admin = _admin(stack)
    vlaio = stack.as_supplier("VLAIO")
    before = stack.catalog.CheckProduct(
        catalog_pb2.CheckProductRequest(product_id="2031", supplier_id="VLAIO"), metadata=vlaio
    )
    assert (before.exists, before.active, before.supplier_allowed) == (True, True, False)

    product = stack.catalog.GetProduct(catalog_pb2.GetProductRequest(id="2031"), metadata=admin)
    product.supplier_ids.append("VLAIO")
    product.ClearField("update_time")
    updated = stack.catalog.UpsertProduct(catalog_pb2.UpsertProductRequest(product=product), metadata=admin)
    assert set(updated.supplier_ids) == {"OMGEVING", "VLAIO"}
    assert updated.name == "Omgevingsvergunning voor ingedeelde inrichtingen"

    # The ingest cache has not seen 2031 yet: the push is checked against the new catalog.
    reply = stack.ingest.PushStatus(
        push_request(status(product="2031", dossier="OMG-VLAIO-1")), metadata=vlaio
    )
    assert reply.outcome == ingest_pb2.PUSH_OUTCOME_CREATED
    listed = stack.query.ListDossiers(
        query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A),
        metadata=stack.as_person(ENTERPRISE_A, "Bedrijfsleider"),
    )
    assert [(d.product_id, d.supplier_id, d.product_name) for d in listed.dossiers] == [
        ("2031", "VLAIO", "Omgevingsvergunning voor ingedeelde inrichtingen")
    ]
    # OMGEVING still may push too.
    omgeving = stack.ingest.PushStatus(
        push_request(status(product="2031", dossier="OMG-1")), metadata=stack.as_supplier("OMGEVING")
    )
    assert omgeving.outcome == ingest_pb2.PUSH_OUTCOME_CREATED


# --- CheckProduct ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "product_id, supplier_id, expected",
    [
        ("1502", "VLAIO", (True, True, True)),
        ("1502", "FIT", (True, True, False)),
        ("1001", "VLAIO", (True, False, True)),
        (NO_PRODUCT_ID, "FIT", (True, True, True)),
        ("9999", "VLAIO", (False, False, False)),
        ("1502", "vlaio", (True, True, False)),
    ],
)
def test_check_product(stack, product_id, supplier_id, expected):
    reply = stack.catalog.CheckProduct(
        catalog_pb2.CheckProductRequest(product_id=product_id, supplier_id=supplier_id),
        metadata=stack.as_supplier(supplier_id),
    )
    assert (reply.exists, reply.active, reply.supplier_allowed) == expected


def test_check_product_needs_a_token(stack):
    err = rpc_error(
        stack.catalog.CheckProduct, catalog_pb2.CheckProductRequest(product_id="1502", supplier_id="VLAIO")
    )
    assert err.code == grpc.StatusCode.UNAUTHENTICATED


# --- ListStatusCodes -------------------------------------------------------------------------


def test_list_status_codes(stack):
    for metadata in (
        stack.as_supplier("VLAIO"),
        stack.as_person(ENTERPRISE_A),
        bearer(stack.tokens.admin("auditor")),
    ):
        reply = stack.catalog.ListStatusCodes(catalog_pb2.ListStatusCodesRequest(), metadata=metadata)
        phases = {p.phase: p.label for p in reply.phases}
        codes = {s.status: s.label for s in reply.status_codes}
        assert len(reply.phases) == len(phases) == 7
        assert len(reply.status_codes) == len(codes) == 23
        assert set(phases) == {v for v in pb.StatusPhase.values() if v != pb.STATUS_PHASE_UNSPECIFIED}
        assert set(codes) == {v for v in pb.StatusCode.values() if v != pb.STATUS_CODE_UNSPECIFIED}
        assert all(label.strip() for label in [*phases.values(), *codes.values()])
        assert "UNSPECIFIED" not in " ".join([*phases.values(), *codes.values()]).upper()
        assert codes[pb.STATUS_CODE_IN_BEHANDELING] == "in behandeling"
        assert codes[pb.STATUS_CODE_GEINITIEERD] == "geïnitieerd"
        assert codes[pb.STATUS_CODE_KLAAR_VOOR_BETALING] == "klaar voor betaling"
        assert codes[pb.STATUS_CODE_ERKEND_VERGUND] == "erkend/vergund"
        assert phases[pb.STATUS_PHASE_SAMENSTELLING_AANVRAAG] == "samenstelling aanvraag"
        assert phases[pb.STATUS_PHASE_BESLISSING_DEFINITIEF] == "beslissing definitief"

    err = rpc_error(stack.catalog.ListStatusCodes, catalog_pb2.ListStatusCodesRequest())
    assert err.code == grpc.StatusCode.UNAUTHENTICATED
    err = rpc_error(
        stack.catalog.ListStatusCodes, catalog_pb2.ListStatusCodesRequest(), metadata=bearer("x.y.z")
    )
    assert err.code == grpc.StatusCode.UNAUTHENTICATED
