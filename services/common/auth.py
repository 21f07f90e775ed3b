"""Identity: JWT bearer tokens verified against the trusted JWKS, and the development keys.

Every service verifies the same way (services.common.calls applies it per method); this
module knows nothing of gRPC beyond reading a header value.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import time
import uuid
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

import jwt
from cachetools import TLRUCache
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from services.common import errors
from services.settings import DEV_JWKS_FILE, DEV_KEY_FILE, Settings

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("RS256", "ES256")
# Operator roles (dosis_admin_roles). Separate on purpose: none implies another (least privilege).
ADMIN_ROLES = ("catalog-admin", "auditor", "key-admin")


@dataclass(frozen=True)
class Identity:
    """Who is calling, as the verified token says. `token` is kept to forward on internal calls."""

    subject: str = ""
    supplier_id: str = ""
    enterprise_number: str = ""
    roles: frozenset[str] = field(default_factory=frozenset)
    admin_roles: frozenset[str] = field(default_factory=frozenset)
    token: str = field(default="", repr=False)


ANONYMOUS = Identity()


class Policy(Enum):
    """What a method asks of the caller."""

    NONE = "none"  # no token needed (a token that is sent must still be valid)
    ANY = "any"  # any valid token
    SUPPLIER = "supplier"  # dosis_supplier claim
    PERSON = "person"  # sub and dosis_enterprise claims
    CATALOG_ADMIN = "catalog-admin"  # dosis_admin_roles contains catalog-admin
    AUDITOR = "auditor"  # dosis_admin_roles contains auditor (the audit trail)
    KEY_ADMIN = "key-admin"  # dosis_admin_roles contains key-admin (key rotation)


# The admin policies and the one role each needs: exactly that role, never another one.
_ADMIN_POLICY_ROLES = {Policy.CATALOG_ADMIN: "catalog-admin", Policy.AUDITOR: "auditor", Policy.KEY_ADMIN: "key-admin"}


# A JWKS at an https URL: how long its keys are kept, how often an unknown kid may fetch it
# again, and how long one fetch may take.
JWKS_LIFESPAN_SECONDS = 300
JWKS_MIN_REFETCH_SECONDS = 60
JWKS_FETCH_TIMEOUT_SECONDS = 5


class UrlKeys:
    """The signing keys published at an https URL, fetched with PyJWKClient.

    Keys are kept for JWKS_LIFESPAN_SECONDS. A token whose kid is not among them fetches the
    set again (the identity provider rotated its keys), but the URL is fetched at most once
    per JWKS_MIN_REFETCH_SECONDS, whatever the reason: a flood of tokens with made-up kids
    costs the identity provider one request a minute. A failed fetch keeps the keys already
    known (an outage of the identity provider does not stop the tokens it already signed);
    with no keys known at all, calls fail UNAVAILABLE (JWKS_UNAVAILABLE) until a fetch works.

    PyJWKClient does the fetching (its own cache is off: ours takes an injectable clock and
    keeps the old keys when a fetch fails, on every PyJWT version we accept). A fetch is a
    blocking HTTP request of at most JWKS_FETCH_TIMEOUT_SECONDS, made in the thread that
    verifies, which for the services is the grpc.aio event loop: so, at most once a minute,
    that loop may stall for up to that timeout while the identity provider answers.
    """

    def __init__(self, url: str, *, ca_file: str | None = None, clock=time.monotonic):
        context = ssl.create_default_context(cafile=ca_file) if ca_file else None
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=JWKS_FETCH_TIMEOUT_SECONDS, ssl_context=context)
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str | None, jwt.PyJWK] = {}
        self._fetched_at: float | None = None  # the last attempt, successful or not
        self._loaded_at: float | None = None  # the last successful fetch
        self.version = 0  # changes with every fetched key set

    def _fetch(self, now: float) -> None:
        """Fetch the key set when the rate limit allows it; keep the old keys when it fails."""
        if self._fetched_at is not None and now - self._fetched_at < JWKS_MIN_REFETCH_SECONDS:
            return
        self._fetched_at = now
        try:
            keys = {k.key_id: k for k in self._client.get_signing_keys(refresh=True)}
        except (jwt.PyJWTError, ValueError) as exc:  # unreachable, not JSON, no usable key
            log.warning("fetching the JWKS failed (%s keys kept): %s", len(self._keys), exc)
            return
        self._keys, self._loaded_at = keys, now
        self.version += 1  # tokens verified with the previous set are checked again

    def current_version(self) -> int:
        """The key set's version, after fetching it again when it is older than its lifespan."""
        with self._lock:
            now = self._clock()
            if self._loaded_at is not None and now - self._loaded_at >= JWKS_LIFESPAN_SECONDS:
                self._fetch(now)
            return self.version

    def key(self, kid: str | None) -> jwt.PyJWK:
        with self._lock:
            now = self._clock()
            if self._loaded_at is None or now - self._loaded_at >= JWKS_LIFESPAN_SECONDS or kid not in self._keys:
                self._fetch(now)
            keys = self._keys
        if not keys:
            raise errors.unavailable("JWKS_UNAVAILABLE", "the trusted keys could not be fetched; try again later")
        if kid in keys:
            return keys[kid]
        raise jwt.InvalidTokenError("unknown signing key")


class TokenVerifier:
    """Verifies tokens against a JWKS file (re-read when it changes) or an https URL (UrlKeys).

    `ca_file` adds a CA to trust for the URL (tests); by default the system's trust store.
    `clock` (monotonic seconds) drives the URL's key cache and fetch limit.
    """

    def __init__(self, jwks: str, issuer: str, audience: str, *, ca_file: str | None = None, clock=time.monotonic):
        self.issuer, self.audience = issuer, audience
        self._source = jwks
        self._lock = threading.Lock()
        self._file_keys: dict[str | None, jwt.PyJWK] = {}
        self._file_mtime: float | None = None
        # token → (its expiry, the key set version, its Identity), kept until the token expires.
        # Used from the event loop; locked all the same, as the key cache above is, so that a
        # verify from a worker thread cannot corrupt it (uncontended, about 0.1 µs a call).
        self._verified: TLRUCache[str, tuple[float, float | int | None, Identity]] = TLRUCache(
            maxsize=10_000, ttu=_until_expiry, timer=time.time
        )
        self._verified_lock = threading.Lock()
        self._url_client = UrlKeys(jwks, ca_file=ca_file, clock=clock) if jwks.startswith("https://") else None
        if self._url_client is None and not Path(jwks).exists():
            raise FileNotFoundError(f"DOSIS_JWKS file {jwks} does not exist (run `dosis keys` for a development key)")

    def _key_for(self, token: str) -> jwt.PyJWK:
        kid = jwt.get_unverified_header(token).get("kid")
        if self._url_client is not None:
            return self._url_client.key(kid)
        with self._lock:
            mtime = os.stat(self._source).st_mtime
            if mtime != self._file_mtime:
                keyset = jwt.PyJWKSet.from_json(Path(self._source).read_text())
                self._file_keys = {k.key_id: k for k in keyset.keys}
                self._file_mtime = mtime
            keys = self._file_keys
        if kid in keys:
            return keys[kid]
        if kid is None and len(keys) == 1:
            return next(iter(keys.values()))
        raise jwt.InvalidTokenError("unknown signing key")

    def verify(self, token: str) -> Identity:
        # A backend sends the same token for many calls: verify its signature once and
        # keep the result until the token expires (or the key set changes).
        version = self._keyset_version()
        try:
            with self._verified_lock:
                cached = self._verified[token]  # a third of what .get() costs: it reads the clock twice
        except KeyError:
            cached = None
        if cached is not None and cached[1] == version:
            return cached[2]
        identity, expires = self._verify(token)
        with self._verified_lock:
            self._verified[token] = (expires, version, identity)
        return identity

    def _keyset_version(self) -> float | int | None:
        """Changes when the JWKS file does, so a removed key stops its cached tokens at once
        (for a URL: once the key set is fetched again, within its lifespan)."""
        if self._url_client is not None:
            return self._url_client.current_version()
        try:
            return os.stat(self._source).st_mtime
        except OSError:
            return None

    def _verify(self, token: str) -> tuple[Identity, float]:
        try:
            key = self._key_for(token)
            algorithm = key.algorithm_name
            if algorithm not in ALLOWED_ALGORITHMS:
                raise jwt.InvalidTokenError(f"algorithm {algorithm} is not accepted")
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iss", "aud"]},
                leeway=30,
            )
        except jwt.ExpiredSignatureError:
            raise errors.unauthenticated("TOKEN_EXPIRED", "the bearer token has expired") from None
        except (jwt.PyJWTError, ValueError) as exc:
            raise errors.unauthenticated("INVALID_TOKEN", f"the bearer token is not valid: {exc}") from None
        return _identity_from(claims, token), float(claims["exp"])


def _until_expiry(_token: str, verified: tuple, _now: float) -> float:
    return verified[0]


def _identity_from(claims: dict, token: str) -> Identity:
    def strings(name: str) -> frozenset[str]:
        value = claims.get(name) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise errors.unauthenticated("INVALID_TOKEN", f"claim {name} must be a list of strings")
        return frozenset(value)

    def string(name: str) -> str:
        value = claims.get(name) or ""
        if not isinstance(value, str):
            raise errors.unauthenticated("INVALID_TOKEN", f"claim {name} must be a string")
        return value

    return Identity(
        subject=string("sub"),
        supplier_id=string("dosis_supplier"),
        enterprise_number=string("dosis_enterprise"),
        roles=strings("dosis_roles"),
        admin_roles=strings("dosis_admin_roles"),
        token=token,
    )


def bearer_token(metadata: tuple[tuple[str, str | bytes], ...] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else value
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise errors.unauthenticated("INVALID_TOKEN", "authorization must be `Bearer <JWT>`")
            return token.strip()
    return None


def authorize(policy: Policy, verifier: TokenVerifier, token: str | None) -> Identity:
    """The caller's identity when it satisfies the policy, else UNAUTHENTICATED/PERMISSION_DENIED."""
    if token is None:
        if policy is Policy.NONE:
            return ANONYMOUS
        raise errors.unauthenticated("MISSING_TOKEN", "this call needs `authorization: Bearer <JWT>` metadata")
    identity = verifier.verify(token)
    if policy is Policy.SUPPLIER and not identity.supplier_id:
        raise errors.permission_denied("SUPPLIER_TOKEN_REQUIRED", "this call needs a supplier token (dosis_supplier)")
    if policy is Policy.PERSON and not (identity.enterprise_number and identity.subject):
        raise errors.permission_denied(
            "PERSON_TOKEN_REQUIRED", "this call needs a person token (sub and dosis_enterprise)"
        )
    role = _ADMIN_POLICY_ROLES.get(policy)
    if role is not None and role not in identity.admin_roles:
        raise errors.permission_denied("ADMIN_ROLE_REQUIRED", f"this call needs the admin role {role}")
    return identity


# --- development keys: `dosis up` without DOSIS_JWKS; never for production -------------------


def ensure_dev_keys(state_dir: Path) -> Path:
    """Create an ES256 key pair in the state folder once; return the JWKS path."""
    state_dir.mkdir(parents=True, exist_ok=True)
    key_path, jwks_path = state_dir / DEV_KEY_FILE, state_dir / DEV_JWKS_FILE
    if key_path.exists() and jwks_path.exists():
        return jwks_path
    private_key = ec.generate_private_key(ec.SECP256R1())
    pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    public_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key()))
    public_jwk.update(kid=f"dosis-dev-{uuid.uuid4().hex[:8]}", use="sig", alg="ES256")
    jwks_path.write_text(json.dumps({"keys": [public_jwk]}, indent=2))
    return jwks_path


def mint_dev_token(settings: Settings, claims: dict, ttl_seconds: int = 3600) -> str:
    """Sign a token with the development key in the state folder."""
    key_path = settings.state_dir / DEV_KEY_FILE
    if not key_path.exists():
        raise FileNotFoundError(f"no development key in {settings.state_dir}: run `dosis up` or `dosis keys` first")
    kid = json.loads((settings.state_dir / DEV_JWKS_FILE).read_text())["keys"][0]["kid"]
    now = int(time.time())
    payload = {"iss": settings.jwt_issuer, "aud": settings.jwt_audience, "iat": now, "exp": now + ttl_seconds}
    payload.update(claims)
    return jwt.encode(payload, key_path.read_bytes(), algorithm="ES256", headers={"kid": kid})
