"""Token verification against a JWKS with RS256 and ES256 keys: real signatures, real failures."""

import base64
import hashlib
import hmac
import json
import os
import time

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from dosis.v1 import catalog_pb2
from services.common import errors
from services.common.auth import Policy, TokenVerifier, authorize
from tests.helpers import bearer, rpc_error

ISSUER, AUDIENCE = "https://idp.example", "dosis"


@pytest.fixture(scope="module")
def keys():
    return {"rsa-1": rsa.generate_private_key(public_exponent=65537, key_size=2048), "ec-1": ec.generate_private_key(ec.SECP256R1())}


@pytest.fixture
def jwks_file(tmp_path, keys):
    entries = [
        dict(json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(keys["rsa-1"].public_key())), kid="rsa-1", alg="RS256"),
        dict(json.loads(jwt.algorithms.ECAlgorithm.to_jwk(keys["ec-1"].public_key())), kid="ec-1", alg="ES256"),
    ]
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": entries}))
    return path


def sign(keys, kid, claims=None, alg=None, **overrides):
    now = int(time.time())
    payload = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "iat": now, "sub": "s", "dosis_supplier": "VLAIO"}
    payload.update(claims or {})
    for name, value in overrides.items():
        if value is None:
            payload.pop(name, None)
        else:
            payload[name] = value
    algorithm = alg or ("RS256" if kid.startswith("rsa") else "ES256")
    return jwt.encode(payload, keys[kid], algorithm=algorithm, headers={"kid": kid})


@pytest.mark.parametrize("kid", ["rsa-1", "ec-1"])
def test_rs256_and_es256_tokens_verify(jwks_file, keys, kid):
    identity = TokenVerifier(str(jwks_file), ISSUER, AUDIENCE).verify(sign(keys, kid))
    assert identity.supplier_id == "VLAIO"


def reason_of(verifier, token):
    with pytest.raises(errors.DosisError) as info:
        verifier.verify(token)
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED
    return info.value.reason


def test_expired_wrong_issuer_wrong_audience_missing_exp(jwks_file, keys):
    v = TokenVerifier(str(jwks_file), ISSUER, AUDIENCE)
    assert reason_of(v, sign(keys, "ec-1", exp=int(time.time()) - 120)) == "TOKEN_EXPIRED"
    assert reason_of(v, sign(keys, "ec-1", iss="https://evil.example")) == "INVALID_TOKEN"
    assert reason_of(v, sign(keys, "ec-1", aud="other")) == "INVALID_TOKEN"
    assert reason_of(v, sign(keys, "ec-1", exp=None)) == "INVALID_TOKEN"


def test_signature_by_an_untrusted_key_fails(jwks_file):
    stranger = ec.generate_private_key(ec.SECP256R1())
    assert reason_of(TokenVerifier(str(jwks_file), ISSUER, AUDIENCE), sign({"ec-1": stranger}, "ec-1")) == "INVALID_TOKEN"


def test_unknown_kid_fails(jwks_file, keys):
    token = jwt.encode({"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60}, keys["ec-1"], "ES256", {"kid": "nope"})
    assert reason_of(TokenVerifier(str(jwks_file), ISSUER, AUDIENCE), token) == "INVALID_TOKEN"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def test_algorithm_confusion_and_none_are_refused(jwks_file, keys):
    v = TokenVerifier(str(jwks_file), ISSUER, AUDIENCE)
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60, "dosis_supplier": "VLAIO"}
    # HS256 "signed" with the RSA public key as the HMAC secret: the classic confusion attack.
    public_pem = keys["rsa-1"].public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = _b64(json.dumps({"alg": "HS256", "kid": "rsa-1", "typ": "JWT"}).encode()) + "." + _b64(
        json.dumps(claims).encode()
    )
    forged = signing_input + "." + _b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    assert reason_of(v, forged) == "INVALID_TOKEN"
    unsigned = _b64(json.dumps({"alg": "none", "kid": "ec-1"}).encode()) + "." + _b64(json.dumps(claims).encode()) + "."
    assert reason_of(v, unsigned) == "INVALID_TOKEN"
    # An ES256 token presented under the RSA key's id.
    assert reason_of(v, jwt.encode(claims, keys["ec-1"], "ES256", {"kid": "rsa-1"})) == "INVALID_TOKEN"


def test_key_rotation_is_picked_up_from_the_file(jwks_file, keys, tmp_path):
    v = TokenVerifier(str(jwks_file), ISSUER, AUDIENCE)
    new_key = ec.generate_private_key(ec.SECP256R1())
    token = sign({"ec-2": new_key}, "ec-2")
    assert reason_of(v, token) == "INVALID_TOKEN"
    data = json.loads(jwks_file.read_text())
    data["keys"].append(dict(json.loads(jwt.algorithms.ECAlgorithm.to_jwk(new_key.public_key())), kid="ec-2", alg="ES256"))
    jwks_file.write_text(json.dumps(data))
    os.utime(jwks_file, (time.time() + 5, time.time() + 5))
    assert v.verify(token).supplier_id == "VLAIO"


def test_claims_decide_the_policy(jwks_file, keys):
    v = TokenVerifier(str(jwks_file), ISSUER, AUDIENCE)
    person = sign(keys, "ec-1", {"dosis_supplier": None, "dosis_enterprise": "0316380841", "dosis_roles": ["r"]})
    supplier = sign(keys, "ec-1")
    admin = sign(keys, "ec-1", {"dosis_supplier": None, "dosis_admin_roles": ["catalog-admin"]})
    auditor = sign(keys, "ec-1", {"dosis_supplier": None, "dosis_admin_roles": ["auditor"]})
    assert authorize(Policy.PERSON, v, person).roles == {"r"}
    assert authorize(Policy.SUPPLIER, v, supplier).supplier_id == "VLAIO"
    assert authorize(Policy.CATALOG_ADMIN, v, admin).admin_roles == {"catalog-admin"}
    assert authorize(Policy.NONE, v, None).supplier_id == ""
    for policy, token in [(Policy.SUPPLIER, person), (Policy.PERSON, supplier), (Policy.CATALOG_ADMIN, auditor)]:
        with pytest.raises(errors.DosisError) as info:
            authorize(policy, v, token)
        assert info.value.code == grpc.StatusCode.PERMISSION_DENIED
    with pytest.raises(errors.DosisError) as info:
        authorize(Policy.ANY, v, None)
    assert info.value.code == grpc.StatusCode.UNAUTHENTICATED


def test_roles_claim_must_be_a_list_of_strings(jwks_file, keys):
    token = sign(keys, "ec-1", {"dosis_roles": "admin"})
    assert reason_of(TokenVerifier(str(jwks_file), ISSUER, AUDIENCE), token) == "INVALID_TOKEN"


def test_over_grpc_bad_scheme_and_expired_token(stack, tokens):
    request = catalog_pb2.ListStatusCodesRequest()
    assert rpc_error(stack.catalog.ListStatusCodes, request, metadata=(("authorization", "Basic abc"),)).code == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    from services.common.auth import mint_dev_token

    expired = mint_dev_token(stack.settings, {"sub": "x"}, ttl_seconds=-120)
    details = rpc_error(stack.catalog.ListStatusCodes, request, metadata=bearer(expired))
    assert (details.code, details.reason) == (grpc.StatusCode.UNAUTHENTICATED, "TOKEN_EXPIRED")
    assert len(stack.catalog.ListStatusCodes(request, metadata=bearer(tokens.supplier())).status_codes) == 23


def test_verified_tokens_are_cached_until_the_key_set_changes(jwks_file, keys):
    v = TokenVerifier(str(jwks_file), ISSUER, AUDIENCE)
    token = sign(keys, "ec-1")
    assert v.verify(token).supplier_id == "VLAIO"
    assert v.verify(token).supplier_id == "VLAIO"  # from the cache
    # The operator removes the key: the cached verification must not outlive it.
    data = json.loads(jwks_file.read_text())
    data["keys"] = [k for k in data["keys"] if k["kid"] != "ec-1"]
    jwks_file.write_text(json.dumps(data))
    os.utime(jwks_file, (time.time() + 10, time.time() + 10))
    assert reason_of(v, token) == "INVALID_TOKEN"



def test_a_verification_is_kept_until_the_token_expires(jwks_file, keys):
    v = TokenVerifier(str(jwks_file), ISSUER, AUDIENCE)
    verified = []
    real = v._verify
    v._verify = lambda token: verified.append(token) or real(token)  # counts signature checks
    fresh = sign(keys, "ec-1")
    for _ in range(3):
        assert v.verify(fresh).supplier_id == "VLAIO"
    assert verified == [fresh]
    # Past its exp but within the 30 s leeway: valid, yet never kept (checked every time).
    lapsed = sign(keys, "ec-1", exp=int(time.time()) - 5)
    for _ in range(2):
        assert v.verify(lapsed).supplier_id == "VLAIO"
    assert verified == [fresh, lapsed, lapsed]
