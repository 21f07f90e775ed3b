"""The IngestService's caller identity: missing, invalid and unsigned tokens are UNAUTHENTICATED,
a token without a supplier claim is PERMISSION_DENIED."""

from __future__ import annotations

import time

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dosis.client import bearer
from dosis.v1 import ingest_pb2
from tests.helpers import ENTERPRISE_A, push_request, status
from tests.ingest_helpers import ROLE, assert_nothing_stored, expect_error


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
