"""A JWKS at an https URL: a real local HTTPS server (a throwaway CA and server certificate)
serves a key set the test changes. Keys are cached; an unknown kid fetches the set again, at
most once a minute (an injected clock); a failed fetch keeps the known keys; a fetch has a
timeout; the server's certificate is checked."""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from services.common import auth, errors
from services.common.auth import TokenVerifier

ISSUER, AUDIENCE = "https://idp.example", "dosis"


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, issuer, public_key, signing_key, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(signing_key, hashes.SHA256())


class JwksServer:
    """HTTPS on 127.0.0.1 serving `self.jwks`; counts the requests. `mode`: ok, error, slow."""

    def __init__(self, folder):
        ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca_cert = _certificate("DOSIS test CA", "DOSIS test CA", ca_key.public_key(), ca_key, ca=True)
        server_cert = _certificate("127.0.0.1", "DOSIS test CA", server_key.public_key(), ca_key, ca=False)
        self.ca_file = folder / "ca.pem"
        self.ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        chain, key = folder / "server.pem", folder / "server-key.pem"
        chain.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM))
        key.write_bytes(
            server_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        self.jwks: dict = {"keys": []}
        self.requests = 0
        self.mode = "ok"
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                if outer.mode == "slow":
                    outer.release.wait(10)
                if outer.mode == "error":
                    self.send_error(503)
                    return
                body = json.dumps(outer.jwks).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain, key)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, keys: dict) -> None:
        self.jwks = {
            "keys": [
                dict(json.loads(jwt.algorithms.ECAlgorithm.to_jwk(k.public_key())), kid=kid, alg="ES256", use="sig")
                for kid, k in keys.items()
            ]
        }

    def stop(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    s = JwksServer(tmp_path)
    yield s
    s.stop()


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def token(key, kid: str, sub: str = "s") -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "exp": now + 300, "iat": now, "sub": sub, "dosis_supplier": "VLAIO"}
    return jwt.encode(claims, key, algorithm="ES256", headers={"kid": kid})


def failure(verifier: TokenVerifier, value: str) -> errors.DosisError:
    with pytest.raises(errors.DosisError) as info:
        verifier.verify(value)
    return info.value


def test_rotation_is_picked_up_on_an_unknown_kid_at_most_once_a_minute(server):
    k1, k2, k3 = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    server.publish({"k1": k1})
    clock = Clock()
    verifier = TokenVerifier(server.url, ISSUER, AUDIENCE, ca_file=str(server.ca_file), clock=clock)

    assert verifier.verify(token(k1, "k1")).supplier_id == "VLAIO"
    assert server.requests == 1
    clock.now += 30
    assert verifier.verify(token(k1, "k1", sub="other")).supplier_id == "VLAIO"  # keys cached
    assert server.requests == 1

    # The identity provider rotates: a token with the new kid fetches the set again.
    server.publish({"k1": k1, "k2": k2})
    clock.now += 31  # a minute after the first fetch
    assert verifier.verify(token(k2, "k2")).supplier_id == "VLAIO"
    assert server.requests == 2

    # Within the minute after that fetch, unknown kids (bogus or new) do not fetch again.
    server.publish({"k1": k1, "k2": k2, "k3": k3})
    clock.now += 59
    for kid in ("k3", "bogus-1", "bogus-2", "k3"):
        refused = failure(verifier, token(k3, kid))
        assert (refused.code, refused.reason) == (grpc.StatusCode.UNAUTHENTICATED, "INVALID_TOKEN")
        assert "unknown signing key" in refused.message
    assert server.requests == 2
    assert verifier.verify(token(k2, "k2", sub="known")).supplier_id == "VLAIO"  # known keys still work
    assert server.requests == 2

    # After the minute, it does.
    clock.now += 1
    assert verifier.verify(token(k3, "k3")).supplier_id == "VLAIO"
    assert server.requests == 3


def test_keys_expire_after_their_lifespan_and_a_failed_fetch_keeps_them(server):
    k1, k2 = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    server.publish({"k1": k1, "k2": k2})
    clock = Clock()
    verifier = TokenVerifier(server.url, ISSUER, AUDIENCE, ca_file=str(server.ca_file), clock=clock)
    t1, t2 = token(k1, "k1"), token(k2, "k2")
    assert verifier.verify(t1).supplier_id == verifier.verify(t2).supplier_id == "VLAIO"
    assert server.requests == 1

    # The identity provider is down when the keys' lifespan ends: the known keys stay.
    server.mode = "error"
    clock.now += auth.JWKS_LIFESPAN_SECONDS
    assert verifier.verify(t1).supplier_id == "VLAIO"
    assert server.requests == 2
    assert verifier.verify(t2).supplier_id == "VLAIO"
    assert server.requests == 2  # the failure also counts for the once-a-minute limit

    # Back up, k1 withdrawn: once the set is fetched again, even k1's verified tokens stop.
    server.mode = "ok"
    server.publish({"k2": k2})
    clock.now += auth.JWKS_MIN_REFETCH_SECONDS
    assert failure(verifier, t1).reason == "INVALID_TOKEN"
    assert verifier.verify(t2).supplier_id == "VLAIO"
    assert server.requests == 3


def test_no_keys_at_all_is_unavailable_and_the_certificate_is_checked(server, monkeypatch):
    k1 = ec.generate_private_key(ec.SECP256R1())
    server.publish({"k1": k1})
    # Without the test CA the server's certificate is not trusted: no keys.
    untrusting = TokenVerifier(server.url, ISSUER, AUDIENCE, clock=Clock())
    refused = failure(untrusting, token(k1, "k1"))
    assert (refused.code, refused.reason) == (grpc.StatusCode.UNAVAILABLE, "JWKS_UNAVAILABLE")
    assert server.requests == 0  # the TLS handshake failed: nothing was served

    # A server that does not answer: the fetch gives up after its timeout.
    monkeypatch.setattr(auth, "JWKS_FETCH_TIMEOUT_SECONDS", 0.5)
    server.mode = "slow"
    clock = Clock()
    slow = TokenVerifier(server.url, ISSUER, AUDIENCE, ca_file=str(server.ca_file), clock=clock)
    started = time.monotonic()
    assert failure(slow, token(k1, "k1")).reason == "JWKS_UNAVAILABLE"
    assert time.monotonic() - started < 5
    server.release.set()
    server.mode = "ok"
    clock.now += auth.JWKS_MIN_REFETCH_SECONDS
    assert slow.verify(token(k1, "k1")).supplier_id == "VLAIO"
