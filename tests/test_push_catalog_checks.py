"""PushStatus against the catalog: unknown, inactive and other suppliers' products; validation
comes first; the catalog being down is UNAVAILABLE."""

from __future__ import annotations

import time

import grpc
import pytest

from tests.helpers import push_request, status
from tests.ingest_helpers import CREATED, assert_nothing_stored, expect_error, push, stored_rows


def test_unknown_product_is_failed_precondition(stack):
    expect_error(
        stack.ingest.PushStatus,
        push_request(status(product="9999")),
        metadata=stack.as_supplier(),
        code=grpc.StatusCode.FAILED_PRECONDITION,
        reason="UNKNOWN_PRODUCT",
    )
    assert_nothing_stored(stack)


def test_inactive_product_is_failed_precondition(stack):
    expect_error(
        stack.ingest.PushStatus,
        push_request(status(product="1001")),
        metadata=stack.as_supplier(),
        code=grpc.StatusCode.FAILED_PRECONDITION,
        reason="PRODUCT_INACTIVE",
    )
    assert_nothing_stored(stack)


@pytest.mark.parametrize("supplier, product", [("VLAIO", "2031"), ("OMGEVING", "1502"), ("WSE", "4410")])
def test_product_of_another_supplier_is_permission_denied(stack, supplier, product):
    expect_error(
        stack.ingest.PushStatus,
        push_request(status(product=product)),
        metadata=stack.as_supplier(supplier),
        code=grpc.StatusCode.PERMISSION_DENIED,
        reason="SUPPLIER_NOT_ALLOWED",
    )
    assert_nothing_stored(stack)


def test_validation_comes_before_the_catalog(stack):
    """A bad field of an unknown product still gets the field-level answer (all fields at once)."""
    details = expect_error(
        stack.ingest.PushStatus,
        push_request(status("123", product="9999")),
        metadata=stack.as_supplier(),
        code=grpc.StatusCode.INVALID_ARGUMENT,
        reason="INVALID_ENTERPRISE_NUMBER",
    )
    assert details.fields() == {"status.enterprise_number"}


def test_catalog_down_is_unavailable(stack, loop_thread):
    assert push(stack, status(product="1502")).outcome == CREATED
    loop_thread.run(stack.servers["catalog"].stop(grace=0))
    started = time.monotonic()
    expect_error(
        stack.ingest.PushStatus,
        push_request(status(product="1519", dossier="D-2")),
        metadata=stack.as_supplier(),
        code=grpc.StatusCode.UNAVAILABLE,
        reason="CATALOG_UNAVAILABLE",
        timeout=10,
    )
    assert time.monotonic() - started < 5
    assert [r["product_id"] for r in stored_rows(stack)] == ["1502"]
