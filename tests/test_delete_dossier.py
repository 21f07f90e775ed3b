"""DeleteDossier: a supplier deletes its own dossier, not another's; unknown, incomplete and
unauthenticated requests are refused."""

from __future__ import annotations

import grpc

from dosis.v1 import ingest_pb2, query_pb2
from tests.helpers import ENTERPRISE_A, status
from tests.ingest_helpers import (
    CREATED, ROLE, expect_error, get_dossier, list_dossiers, minutes_ago, push, stored_rows,
)


def test_delete_own_dossier(stack):
    push(stack, status(dossier="D-1"))
    push(stack, status(dossier="D-2"))
    reply = stack.ingest.DeleteDossier(
        ingest_pb2.DeleteDossierRequest(product_id="1502", dossier_id="D-1"), metadata=stack.as_supplier()
    )
    assert reply == ingest_pb2.DeleteDossierResponse()
    expect_error(
        stack.query.GetDossier,
        query_pb2.GetDossierRequest(enterprise_number=ENTERPRISE_A, product_id="1502", dossier_id="D-1"),
        metadata=stack.as_person(ENTERPRISE_A, ROLE),
        code=grpc.StatusCode.NOT_FOUND,
    )
    assert [d.dossier_id for d in list_dossiers(stack)] == ["D-2"]  # only that one
    # Deleting twice: it is gone.
    expect_error(
        stack.ingest.DeleteDossier,
        ingest_pb2.DeleteDossierRequest(product_id="1502", dossier_id="D-1"),
        metadata=stack.as_supplier(),
        code=grpc.StatusCode.NOT_FOUND,
        reason="DOSSIER_NOT_FOUND",
    )
    # After a delete, an older status starts the dossier afresh (nothing remembered).
    assert push(stack, status(dossier="D-1", when=minutes_ago(600))).outcome == CREATED


def test_delete_unknown_dossier_is_not_found(stack):
    push(stack, status(dossier="D-1"))
    for product, dossier in [("1502", "D-404"), ("1519", "D-1"), ("9999", "D-1")]:
        expect_error(
            stack.ingest.DeleteDossier,
            ingest_pb2.DeleteDossierRequest(product_id=product, dossier_id=dossier),
            metadata=stack.as_supplier(),
            code=grpc.StatusCode.NOT_FOUND,
            reason="DOSSIER_NOT_FOUND",
        )
    assert len(stored_rows(stack)) == 1


def test_other_supplier_cannot_delete(stack):
    push(stack, status(dossier="D-1"))
    expect_error(
        stack.ingest.DeleteDossier,
        ingest_pb2.DeleteDossierRequest(product_id="1502", dossier_id="D-1"),
        metadata=stack.as_supplier("OMGEVING"),
        code=grpc.StatusCode.NOT_FOUND,
        reason="DOSSIER_NOT_FOUND",
    )
    assert get_dossier(stack).supplier_id == "VLAIO"
    assert len(stored_rows(stack)) == 1


def test_delete_missing_fields_names_both(stack):
    details = expect_error(
        stack.ingest.DeleteDossier,
        ingest_pb2.DeleteDossierRequest(),
        metadata=stack.as_supplier(),
        code=grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields() == {"product_id", "dossier_id"}
    details = expect_error(
        stack.ingest.DeleteDossier,
        ingest_pb2.DeleteDossierRequest(product_id="1502"),
        metadata=stack.as_supplier(),
        code=grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields() == {"dossier_id"}


def test_delete_without_token_is_unauthenticated(stack):
    push(stack, status())
    expect_error(
        stack.ingest.DeleteDossier,
        ingest_pb2.DeleteDossierRequest(product_id="1502", dossier_id="D-1"),
        code=grpc.StatusCode.UNAUTHENTICATED,
        reason="MISSING_TOKEN",
    )
    assert len(stored_rows(stack)) == 1
