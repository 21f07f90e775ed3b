"""IngestService (DOSIS-IN) against real servers, real JWTs and both real databases.

Every test takes `stack` and so runs once on SQLite and once on PostgreSQL. Stored state is
read back through the QueryService (with a person token holding the dossier's role) or,
where the query service cannot tell (nothing stored, identity columns), straight from the
dossier store's engine. No mocks.
"""

from __future__ import annotations

import random
import re
import threading
import time
from datetime import datetime, timedelta

import grpc
import jwt
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from google.rpc import error_details_pb2, status_pb2

from dosis.client import ErrorDetails, bearer, error_details, status_details
from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import ingest_pb2, query_pb2
from tests.helpers import (
    ENTERPRISE_A,
    ENTERPRISE_B,
    UTC,
    push_request,
    status,
    ts,
)

ROLE = "Bedrijfsleider"
UPPER_SNAKE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")
DETAILS_KEY = "grpc-status-details-bin"

CREATED = ingest_pb2.PUSH_OUTCOME_CREATED
UPDATED = ingest_pb2.PUSH_OUTCOME_UPDATED
UNCHANGED = ingest_pb2.PUSH_OUTCOME_UNCHANGED
STALE = ingest_pb2.PUSH_OUTCOME_STALE
REJECTED = ingest_pb2.PUSH_OUTCOME_REJECTED


# --- helpers ------------------------------------------------------------------------------


def minutes_ago(n: float) -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=n)).replace(microsecond=123456)


def push(stack, message: pb.DossierStatus, request_id: str = "", supplier: str = "VLAIO"):
    return stack.ingest.PushStatus(push_request(message, request_id), metadata=stack.as_supplier(supplier))


def check_rpc_status(raw: status_pb2.Status, code: grpc.StatusCode, reason: str | None) -> str:
    """The google.rpc.Status carries exactly one ErrorInfo, domain dosis, UPPER_SNAKE reason."""
    assert raw.code == code.value[0], (raw.code, raw.message)
    infos = []
    for detail in raw.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            infos.append(info)
    assert len(infos) == 1, f"expected exactly one ErrorInfo, got {infos}"
    assert infos[0].domain == "dosis"
    assert UPPER_SNAKE.match(infos[0].reason), infos[0].reason
    if reason is not None:
        assert infos[0].reason == reason, (infos[0].reason, raw.message)
    return infos[0].reason


def expect_error(
    call, request, *, code: grpc.StatusCode, reason: str | None = None, **kwargs
) -> ErrorDetails:
    """Call, expect failure with `code`; check the grpc-status-details-bin trailer; the details."""
    with pytest.raises(grpc.RpcError) as info:
        result = call(request, **kwargs)
        if hasattr(result, "__iter__") and not hasattr(result, "SerializeToString"):
            list(result)  # a response stream fails while it is read
    error = info.value
    assert error.code() == code, (error.code(), error.details())
    trailers = dict(error.trailing_metadata() or ())
    assert DETAILS_KEY in trailers, f"no {DETAILS_KEY} trailer: {error.details()}"
    raw = status_pb2.Status.FromString(trailers[DETAILS_KEY])
    check_rpc_status(raw, code, reason)
    details = error_details(error)
    assert details.code == code
    return details


def get_dossier(
    stack, enterprise=ENTERPRISE_A, product="1502", dossier="D-1", roles=(ROLE,)
) -> pb.DossierStatus:
    return stack.query.GetDossier(
        query_pb2.GetDossierRequest(enterprise_number=enterprise, product_id=product, dossier_id=dossier),
        metadata=stack.as_person(enterprise, *roles),
    )


def list_dossiers(stack, enterprise=ENTERPRISE_A, roles=(ROLE,)) -> list[pb.DossierStatus]:
    reply = stack.query.ListDossiers(
        query_pb2.ListDossiersRequest(enterprise_number=enterprise),
        metadata=stack.as_person(enterprise, *roles),
    )
    return list(reply.dossiers)


def stored_rows(stack) -> list[dict]:
    """Every row of the dossier store, straight from the database."""
    with stack.stores.dossiers.connect() as c:
        rows = c.execute(
            sa.text(
                "SELECT supplier_id, product_id, dossier_id, enterprise_number FROM dossiers "
                "ORDER BY supplier_id, product_id, dossier_id"
            )
        )
        return [dict(r._mapping) for r in rows]


def assert_nothing_stored(stack) -> None:
    assert stored_rows(stack) == []
    assert list_dossiers(stack) == []


# --- 1. outcomes ---------------------------------------------------------------------------


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


# --- 2. correction -------------------------------------------------------------------------


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


# --- 3. enterprise number forms ------------------------------------------------------------


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


# --- 4. validation -------------------------------------------------------------------------


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


# --- 5. catalog checks ---------------------------------------------------------------------


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


# --- 6. identity ---------------------------------------------------------------------------


def test_no_token_is_unauthenticated(stack):
    expect_error(
        stack.ingest.PushStatus,
        push_request(status()),
        code=grpc.StatusCode.UNAUTHENTICATED,
        reason="MISSING_TOKEN",
    )
    assert_nothing_stored(stack)


def _foreign_key_token(stack) -> str:
    """Well-formed, right claims and kid, signed by a key DOSIS does not trust."""
    kid = jwt.get_unverified_header(stack.tokens.supplier())["kid"]
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return jwt.encode(_supplier_claims(stack), key, algorithm="ES256", headers={"kid": kid})


def _unsigned_token(stack) -> str:
    return jwt.encode(_supplier_claims(stack), None, algorithm="none")


def _supplier_claims(stack) -> dict:
    now = int(time.time())
    return {
        "iss": stack.settings.jwt_issuer,
        "aud": stack.settings.jwt_audience,
        "iat": now,
        "exp": now + 600,
        "sub": "s-VLAIO",
        "dosis_supplier": "VLAIO",
    }


@pytest.mark.parametrize(
    "make_token, reason",
    [
        pytest.param(lambda stack: "garbage", "INVALID_TOKEN", id="garbage"),
        pytest.param(lambda stack: "a.b.c", "INVALID_TOKEN", id="three-garbage-parts"),
        pytest.param(_foreign_key_token, "INVALID_TOKEN", id="foreign-key"),
        pytest.param(_unsigned_token, "INVALID_TOKEN", id="alg-none"),
        pytest.param(
            lambda stack: stack.tokens.supplier(aud="someone-else"), "INVALID_TOKEN", id="wrong-audience"
        ),
        pytest.param(lambda stack: stack.tokens.supplier(iss="evil"), "INVALID_TOKEN", id="wrong-issuer"),
        pytest.param(
            lambda stack: stack.tokens.supplier(exp=int(time.time()) - 300), "TOKEN_EXPIRED", id="expired"
        ),
    ],
)
def test_invalid_token_is_unauthenticated(stack, make_token, reason):
    expect_error(
        stack.ingest.PushStatus,
        push_request(status()),
        metadata=bearer(make_token(stack)),
        code=grpc.StatusCode.UNAUTHENTICATED,
        reason=reason,
    )
    assert_nothing_stored(stack)


def test_not_a_bearer_header_is_unauthenticated(stack):
    expect_error(
        stack.ingest.PushStatus,
        push_request(status()),
        metadata=(("authorization", f"Basic {stack.tokens.supplier()}"),),
        code=grpc.StatusCode.UNAUTHENTICATED,
    )
    assert_nothing_stored(stack)


@pytest.mark.parametrize("who", ["person", "admin"])
def test_token_without_supplier_claim_is_permission_denied(stack, who):
    if who == "person":
        token = stack.tokens.person(ENTERPRISE_A, ROLE)
    else:
        token = stack.tokens.admin("catalog-admin")
    expect_error(
        stack.ingest.PushStatus,
        push_request(status()),
        metadata=bearer(token),
        code=grpc.StatusCode.PERMISSION_DENIED,
    )
    expect_error(
        stack.ingest.DeleteDossier,
        ingest_pb2.DeleteDossierRequest(product_id="1502", dossier_id="D-1"),
        metadata=bearer(token),
        code=grpc.StatusCode.PERMISSION_DENIED,
    )
    assert_nothing_stored(stack)


def test_stream_without_token_is_unauthenticated(stack):
    expect_error(
        stack.ingest.StreamStatuses,
        iter([push_request(status(), "s-1")]),
        code=grpc.StatusCode.UNAUTHENTICATED,
        reason="MISSING_TOKEN",
    )
    assert_nothing_stored(stack)


# --- 7. StreamStatuses ---------------------------------------------------------------------


def test_stream_answers_every_item_in_order_and_goes_on(stack):
    t1, t0 = minutes_ago(10), minutes_ago(20)
    requests = [
        push_request(status(dossier="D-1", when=t1), "good-1"),
        push_request(
            status("0316380842", dossier="D-9", reference=pb.Reference(url="http://x.be")), "bad-fields"
        ),
        push_request(status(product="2031", dossier="D-8"), "bad-supplier"),
        ingest_pb2.PushStatusRequest(request_id="bad-missing"),
        push_request(status(product="9999", dossier="D-7"), "bad-product"),
        push_request(status(product="1001", dossier="D-6"), "bad-inactive"),
        push_request(status(dossier="D-2", when=t1), "good-2"),
        push_request(status(dossier="D-1", when=t1), "same-1"),
        push_request(status(dossier="D-1", when=t0), "old-1"),
        push_request(status(dossier="D-3", when=t1, public=True, roles=()), "good-3"),
    ]
    replies = list(stack.ingest.StreamStatuses(iter(requests), metadata=stack.as_supplier()))

    assert [r.request_id for r in replies] == [r.request_id for r in requests]
    assert [r.outcome for r in replies] == [
        CREATED, REJECTED, REJECTED, REJECTED, REJECTED, REJECTED, CREATED, UNCHANGED, STALE, CREATED
    ]  # fmt: skip
    for reply in replies:
        assert reply.HasField("error") == (reply.outcome == REJECTED), reply.request_id

    by_id = {r.request_id: r for r in replies}
    fields = status_details(by_id["bad-fields"].error)
    assert fields.code == grpc.StatusCode.INVALID_ARGUMENT
    assert {(v.field, v.reason) for v in fields.violations} == {
        ("status.enterprise_number", "INVALID_ENTERPRISE_NUMBER"),
        ("status.reference.url", "INVALID_REFERENCE_URL"),
    }
    check_rpc_status(by_id["bad-fields"].error, grpc.StatusCode.INVALID_ARGUMENT, None)
    check_rpc_status(by_id["bad-supplier"].error, grpc.StatusCode.PERMISSION_DENIED, "SUPPLIER_NOT_ALLOWED")
    check_rpc_status(by_id["bad-missing"].error, grpc.StatusCode.INVALID_ARGUMENT, "MISSING_STATUS")
    assert status_details(by_id["bad-missing"].error).fields() == {"status"}
    check_rpc_status(by_id["bad-product"].error, grpc.StatusCode.FAILED_PRECONDITION, "UNKNOWN_PRODUCT")
    check_rpc_status(by_id["bad-inactive"].error, grpc.StatusCode.FAILED_PRECONDITION, "PRODUCT_INACTIVE")
    assert status_details(by_id["bad-supplier"].error).reason == "SUPPLIER_NOT_ALLOWED"

    assert [(r["product_id"], r["dossier_id"]) for r in stored_rows(stack)] == [
        ("1502", "D-1"),
        ("1502", "D-2"),
        ("1502", "D-3"),
    ]
    assert get_dossier(stack, dossier="D-1").status_time == ts(t1)


def test_stream_interleaves_answers_with_requests(stack):
    """Each answer comes before the next request is sent: a true bidi stream, not a batch."""
    answered = threading.Event()
    seen: list[str] = []

    def requests():
        yield push_request(status(dossier="D-1"), "first")
        assert answered.wait(5), "no answer to the first item before the second was sent"
        yield push_request(status("bad"), "second")
        yield push_request(status(dossier="D-2"), "third")

    for reply in stack.ingest.StreamStatuses(requests(), metadata=stack.as_supplier()):
        seen.append(reply.request_id)
        answered.set()
    assert seen == ["first", "second", "third"]
    assert len(stored_rows(stack)) == 2


def _stream_replies(stack, requests) -> tuple[list[ingest_pb2.PushStatusResponse], grpc.RpcError | None]:
    """All answers of one stream, and the error that ended it early, if any."""
    replies = []
    try:
        for reply in stack.ingest.StreamStatuses(iter(requests), metadata=stack.as_supplier()):
            replies.append(reply)
    except grpc.RpcError as error:
        return replies, error
    return replies, None


def test_stream_goes_on_after_an_out_of_range_timestamp(stack):
    """A Timestamp past year 9999 is one bad item (REJECTED), not the end of the stream."""
    odd = status(dossier="D-9")
    odd.status_time.seconds = 253_402_300_800  # 10000-01-01T00:00:00Z
    requests = [
        push_request(status(dossier="D-1"), "good-1"),
        push_request(odd, "year-10000"),
        push_request(status(dossier="D-2"), "good-2"),
    ]
    replies, error = _stream_replies(stack, requests)
    assert error is None, f"stream ended after {len(replies)} answers: {error.code()} {error.details()}"
    assert [(r.request_id, r.outcome) for r in replies] == [
        ("good-1", CREATED),
        ("year-10000", REJECTED),
        ("good-2", CREATED),
    ]
    details = status_details(replies[1].error)
    assert details.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "status.status_time" in details.fields()
    assert [r["dossier_id"] for r in stored_rows(stack)] == ["D-1", "D-2"]


def test_stream_goes_on_after_a_nul_character(stack):
    """A NUL in a text field is one item's problem on both backends, not the end of the stream."""
    requests = [
        push_request(status(dossier="D-1"), "good-1"),
        push_request(status(dossier="D-9", detail_status="voor\x00na"), "nul"),
        push_request(status(dossier="D-2"), "good-2"),
    ]
    replies, error = _stream_replies(stack, requests)
    assert error is None, f"stream ended after {len(replies)} answers: {error.code()} {error.details()}"
    assert [r.request_id for r in replies] == ["good-1", "nul", "good-2"]
    assert replies[0].outcome == CREATED and replies[2].outcome == CREATED
    if replies[1].outcome == REJECTED:
        nul = status_details(replies[1].error)
        assert nul.code == grpc.StatusCode.INVALID_ARGUMENT
        assert "status.detail_status" in nul.fields()
    else:
        assert replies[1].outcome == CREATED
    assert {"D-1", "D-2"} <= {r["dossier_id"] for r in stored_rows(stack)}


# --- 8. DeleteDossier ----------------------------------------------------------------------


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


# --- 9. UploadBatch: see tests/test_upload.py -------------------------------------------


# --- 10. concurrency -----------------------------------------------------------------------


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
