"""The IngestService's caller identity: missing, invalid and unsigned tokens are UNAUTHENTICATED,
a token without a supplier claim is PERMISSION_DENIED."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from dosis.client import bearer
from dosis.v1 import ingest_pb2
from services.settings import DEV_KEY_FILE
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


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _hs256_with_the_public_key(stack) -> str:
    """The algorithm confusion attack: HMAC-SHA256 keyed with the trusted public key's PEM,
    under that key's kid (PyJWT refuses to make one, so it is made by hand)."""
    jwk = json.loads(Path(stack.settings.jwks).read_text())["keys"][0]
    public_pem = jwt.PyJWK(jwk).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "kid": jwk["kid"], "typ": "JWT"}
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(_supplier_claims(stack)).encode())
    return signing_input + "." + _b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())


def _unknown_kid_token(stack) -> str:
    """Signed by the trusted key, but naming a key id DOSIS does not know."""
    key = (stack.settings.state_dir / DEV_KEY_FILE).read_bytes()
    return jwt.encode(_supplier_claims(stack), key, algorithm="ES256", headers={"kid": "not-a-dosis-key"})


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
    "make_token, reason, says",
    [
        pytest.param(lambda stack: "garbage", "INVALID_TOKEN", "not valid", id="garbage"),
        pytest.param(lambda stack: "a.b.c", "INVALID_TOKEN", "not valid", id="three-garbage-parts"),
        pytest.param(_foreign_key_token, "INVALID_TOKEN", "signature", id="foreign-key"),
        pytest.param(_unsigned_token, "INVALID_TOKEN", "alg", id="alg-none"),
        pytest.param(_hs256_with_the_public_key, "INVALID_TOKEN", "alg", id="hs256-keyed-with-the-public-key"),
        pytest.param(_unknown_kid_token, "INVALID_TOKEN", "unknown signing key", id="wrong-kid"),
        pytest.param(
            lambda stack: stack.tokens.supplier(aud="someone-else"), "INVALID_TOKEN", "audience", id="wrong-audience"
        ),
        pytest.param(lambda stack: stack.tokens.supplier(iss="evil"), "INVALID_TOKEN", "issuer", id="wrong-issuer"),
        pytest.param(
            lambda stack: stack.tokens.supplier(exp=int(time.time()) - 300), "TOKEN_EXPIRED", "expired", id="expired"
        ),
        pytest.param(
            lambda stack: stack.tokens.supplier(nbf=int(time.time()) + 600), "INVALID_TOKEN", "not yet valid",
            id="not-yet-valid",
        ),
        pytest.param(
            lambda stack: stack.tokens.supplier(iat=int(time.time()) + 600), "INVALID_TOKEN", "not yet valid",
            id="issued-in-the-future",
        ),
    ],
)
def test_invalid_token_is_unauthenticated(stack, make_token, reason, says):
    details = expect_error(
        stack.ingest.PushStatus,
        push_request(status()),
        metadata=bearer(make_token(stack)),
        code=grpc.StatusCode.UNAUTHENTICATED,
        reason=reason,
    )
    assert says in details.message.lower(), details.message  # the reason, in words
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
