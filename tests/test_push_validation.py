"""PushStatus validation: every bad field named in one INVALID_ARGUMENT, limits, timestamps
at and beyond the edges of the range, NUL characters on both backends."""

from __future__ import annotations

from datetime import datetime, timedelta

import grpc
import pytest

from dosis.client import error_details
from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import ingest_pb2, query_pb2
from tests.helpers import ENTERPRISE_A, UTC, push_request, status, ts
from tests.ingest_helpers import (
    CREATED, UNCHANGED, assert_nothing_stored, expect_error, get_dossier, list_dossiers, push, stored_rows,
)


def test_every_bad_field_is_named_in_one_invalid_argument(stack):
    bad = status(
        "0316380842",  # wrong check digits
        dossier="D" * 129,
        phase=pb.STATUS_PHASE_UNSPECIFIED,
        roles=(),
        when=datetime.now(UTC) + timedelta(minutes=10),
        reference=pb.Reference(url="http://www.vlaio.be/dossier"),
        detail_status="x" * 201,
        action_required=True,
    )
    details = expect_error(
        stack.ingest.PushStatus,
        push_request(bad, "bad-1"),
        metadata=stack.as_supplier(),
        code=grpc.StatusCode.INVALID_ARGUMENT,
    )
    reasons = {v.field: v.reason for v in details.violations}
    assert reasons == {
        "status.enterprise_number": "INVALID_ENTERPRISE_NUMBER",
        "status.dossier_id": "INVALID_DOSSIER_ID",
        "status.phase": "INVALID_PHASE",
        "status.required_roles": "MISSING_REQUIRED_ROLES",
        "status.status_time": "STATUS_TIME_IN_FUTURE",
        "status.reference.url": "INVALID_REFERENCE_URL",
        "status.detail_status": "FIELD_TOO_LONG",
        "status.action": "MISSING_ACTION",
    }
    assert len(details.violations) == len(reasons)  # one violation per field, no duplicates
    assert all(v.description for v in details.violations)
    assert details.reason in set(reasons.values())
    assert_nothing_stored(stack)


def test_missing_fields_are_all_named(stack):
    empty = pb.DossierStatus()
    details = expect_error(
        stack.ingest.PushStatus,
        push_request(empty),
        metadata=stack.as_supplier(),
        code=grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert details.fields() == {
        "status.enterprise_number",
        "status.product_id",
        "status.dossier_id",
        "status.phase",
        "status.status",
        "status.status_time",
        "status.reference",
        "status.required_roles",
    }
    assert {v.field: v.reason for v in details.violations}["status.reference"] == "MISSING_REFERENCE"
    assert_nothing_stored(stack)


def _bad(id_: str, field: str, reason: str, **fields):
    return pytest.param(fields, field, reason, id=id_)


@pytest.mark.parametrize(
    "fields, field, reason",
    [
        _bad("no-reference", "status.reference", "MISSING_REFERENCE", reference=pb.Reference()),
        _bad(
            "ftp-url",
            "status.reference.url",
            "INVALID_REFERENCE_URL",
            reference=pb.Reference(url="ftp://vlaio.be/x"),
        ),
        _bad(
            "bad-email",
            "status.reference.email",
            "INVALID_REFERENCE_EMAIL",
            reference=pb.Reference(email="not-an-address"),
        ),
        _bad("status-unspecified", "status.status", "INVALID_STATUS", code=pb.STATUS_CODE_UNSPECIFIED),
        _bad("status-unknown-number", "status.status", "INVALID_STATUS", code=999),
        _bad("phase-unknown-number", "status.phase", "INVALID_PHASE", phase=99),
        _bad("empty-dossier-id", "status.dossier_id", "INVALID_DOSSIER_ID", dossier=""),
        _bad("unprintable-dossier-id", "status.dossier_id", "INVALID_DOSSIER_ID", dossier="D-\n1"),
        _bad("action-too-long", "status.action", "FIELD_TOO_LONG", action="a" * 201),
        _bad("no-product", "status.product_id", "INVALID_PRODUCT_ID", product=""),
        _bad(
            "visible-until-past",
            "status.visible_until",
            "VISIBLE_UNTIL_IN_PAST",
            visible_until=datetime.now(UTC) - timedelta(minutes=1),
        ),
        _bad(  # far enough ahead to stay so however late in the run this case comes
            "an-hour-ahead",
            "status.status_time",
            "STATUS_TIME_IN_FUTURE",
            when=datetime.now(UTC) + timedelta(hours=1),
        ),
    ],
)
def test_single_bad_field(stack, fields, field, reason):
    details = expect_error(
        stack.ingest.PushStatus,
        push_request(status(**fields)),
        metadata=stack.as_supplier(),
        code=grpc.StatusCode.INVALID_ARGUMENT,
        reason=reason,
    )
    assert [(v.field, v.reason) for v in details.violations] == [(field, reason)]
    assert_nothing_stored(stack)


@pytest.mark.parametrize(
    "enterprise",
    ["0316380842", "2316380841", "031638084", "03163808411", "BE", "", "O316380841", "０３１６３８０８４１"],
)
def test_bad_enterprise_numbers(stack, enterprise):
    details = expect_error(
        stack.ingest.PushStatus,
        push_request(status(enterprise)),
        metadata=stack.as_supplier(),
        code=grpc.StatusCode.INVALID_ARGUMENT,
        reason="INVALID_ENTERPRISE_NUMBER",
    )
    assert details.fields() == {"status.enterprise_number"}
    assert_nothing_stored(stack)


def test_missing_status_message_is_rejected(stack):
    details = expect_error(
        stack.ingest.PushStatus,
        ingest_pb2.PushStatusRequest(request_id="no-status"),
        metadata=stack.as_supplier(),
        code=grpc.StatusCode.INVALID_ARGUMENT,
        reason="MISSING_STATUS",
    )
    assert details.fields() == {"status"}
    assert_nothing_stored(stack)


def test_public_without_roles_is_accepted_and_visible_without_role(stack):
    assert push(stack, status(roles=(), public=True)).outcome == CREATED
    seen = get_dossier(stack, roles=())
    assert seen.public is True
    assert list(seen.required_roles) == []
    public = stack.query.ListPublicDossiers(
        query_pb2.ListPublicDossiersRequest(enterprise_number=ENTERPRISE_A)
    )
    assert [d.dossier_id for d in public.dossiers] == ["D-1"]


def test_status_time_four_minutes_ahead_is_accepted(stack):
    ahead = (datetime.now(UTC) + timedelta(minutes=4)).replace(microsecond=0)
    assert push(stack, status(when=ahead)).outcome == CREATED
    assert get_dossier(stack).status_time == ts(ahead)


def test_limits_are_inclusive(stack):
    dossier = "D" * 128
    message = status(
        dossier=dossier,
        detail_status="d" * 200,
        action_required=True,
        action="a" * 200,
        visible_until=datetime.now(UTC) + timedelta(days=30),
        reference=pb.Reference(url="https://www.vlaio.be/x", email="loket@vlaio.be", contact="Bel 1700"),
    )
    assert push(stack, message).outcome == CREATED
    got = get_dossier(stack, dossier=dossier)
    assert (len(got.detail_status), len(got.action), got.action_required) == (200, 200, True)
    assert got.visible_until == message.visible_until
    assert got.reference == message.reference
    assert push(stack, message).outcome == UNCHANGED


def test_output_only_fields_set_by_caller_are_ignored(stack):
    message = status(
        supplier_id="OMGEVING",
        product_name="Verzonnen naam",
        update_time=datetime(2000, 1, 1, tzinfo=UTC),
    )
    before = datetime.now(UTC) - timedelta(seconds=5)
    assert push(stack, message).outcome == CREATED
    got = get_dossier(stack)
    assert got.supplier_id == "VLAIO"
    assert got.product_name == "KMO-portefeuille (opleiding en advies)"
    assert got.update_time.ToDatetime(UTC) >= before
    assert [d.supplier_id for d in list_dossiers(stack)] == ["VLAIO"]
    assert [r["supplier_id"] for r in stored_rows(stack)] == ["VLAIO"]
    # The claimed supplier_id does not buy the right to push another supplier's product either.
    expect_error(
        stack.ingest.PushStatus,
        push_request(status(product="2031", dossier="D-2", supplier_id="OMGEVING")),
        metadata=stack.as_supplier("VLAIO"),
        code=grpc.StatusCode.PERMISSION_DENIED,
        reason="SUPPLIER_NOT_ALLOWED",
    )


@pytest.mark.parametrize(
    "field, seconds, nanos",
    [
        pytest.param("status_time", 253_402_300_800, 0, id="status_time-year-10000"),
        pytest.param("visible_until", 253_402_300_800, 0, id="visible_until-year-10000"),
        pytest.param("status_time", -62_135_596_801, 0, id="status_time-year-0"),
        pytest.param("status_time", 1_700_000_000, 1_000_000_000, id="status_time-nanos-too-big"),
        pytest.param("status_time", 1_700_000_000, -1, id="status_time-nanos-negative"),
    ],
)
def test_timestamp_out_of_range_is_invalid_argument(stack, field, seconds, nanos):
    """A google.protobuf.Timestamp outside its documented range (0001-01-01..9999-12-31,
    nanos 0..999999999) is invalid input: INVALID_ARGUMENT naming the field, not INTERNAL."""
    message = status(visible_until=datetime.now(UTC) + timedelta(days=1))
    getattr(message, field).seconds = seconds
    getattr(message, field).nanos = nanos
    details = expect_error(
        stack.ingest.PushStatus,
        push_request(message),
        metadata=stack.as_supplier(),
        code=grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert f"status.{field}" in details.fields()
    assert_nothing_stored(stack)


def test_timestamps_at_the_edges_of_the_range_are_accepted(stack):
    """0001-01-01 as status_time and 9999-12-31 as visible_until are valid Timestamps."""
    message = status()
    message.status_time.seconds, message.status_time.nanos = -62_135_596_800, 0  # 0001-01-01T00:00:00Z
    message.visible_until.seconds, message.visible_until.nanos = 253_402_300_799, 999_999_000
    assert push(stack, message).outcome == CREATED
    got = get_dossier(stack)
    assert (got.status_time, got.visible_until) == (message.status_time, message.visible_until)
    assert push(stack, message).outcome == UNCHANGED


@pytest.mark.parametrize(
    "field, value",
    [
        ("detail_status", "voor\x00na"),
        ("action", "voor\x00na"),
        ("reference.contact", "voor\x00na"),
        ("reference.url", "https://www.vlaio.be/voor\x00na"),
        ("reference.email", "voor\x00na@vlaio.be"),
    ],
)
def test_nul_character_in_text_is_handled_alike_on_both_backends(stack, field, value):
    """Either stored and returned as sent, or INVALID_ARGUMENT naming the field; never INTERNAL."""
    message = status(action_required=True, action="Bel ons")
    target = message.reference if field.startswith("reference.") else message
    setattr(target, field.split(".")[-1], value)
    try:
        reply = push(stack, message)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (error.code(), error.details())
        assert f"status.{field}" in error_details(error).fields()
        assert_nothing_stored(stack)
        return
    assert reply.outcome == CREATED
    got = get_dossier(stack)
    source = got.reference if field.startswith("reference.") else got
    assert getattr(source, field.split(".")[-1]) == value
