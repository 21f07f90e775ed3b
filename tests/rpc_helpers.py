"""Every RPC of the services, who may call it, and a generic way to call any of them.

The RPCs come from the service descriptors in dosis.v1, so a new RPC cannot be forgotten: the
tests that use TABLE fail for a method without a row. To add a service (for example
dosis.v1.AuditService at the query service's address): put its descriptor in SERVICES and its
address in ADDRESS, and give each of its methods a row in TABLE.

call() sends raw bytes as request frames with identity serializers (no stub), so the same
code calls every method, with valid requests (Row.frames) or with garbage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import grpc
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from dosis.client import ErrorDetails, bearer, error_details
from dosis.v1 import audit_pb2, catalog_pb2, ingest_pb2, query_pb2
from services.common.auth import mint_dev_token
from tests.helpers import ENTERPRISE_A, ENTERPRISE_B, push_request, status
from tests.ingest_helpers import ROLE
from tests.upload_helpers import csv_bytes, requests, row

SERVICES: list[ServiceDescriptor] = [
    ingest_pb2.DESCRIPTOR.services_by_name["IngestService"],
    query_pb2.DESCRIPTOR.services_by_name["QueryService"],
    catalog_pb2.DESCRIPTOR.services_by_name["CatalogService"],
    audit_pb2.DESCRIPTOR.services_by_name["AuditService"],
]

# Which server of the stack fixture serves each service.
ADDRESS = {
    "dosis.v1.IngestService": "ingest",
    "dosis.v1.QueryService": "query",
    "dosis.v1.CatalogService": "catalog",
    "dosis.v1.AuditService": "query",
}


def full_name(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def methods(services: list[ServiceDescriptor] = SERVICES) -> list[MethodDescriptor]:
    return [method for service in services for method in service.methods]


# --- callers ----------------------------------------------------------------------------

# Each kind of caller: its token's claims, or None for a call without a token.
CALLERS: dict[str, dict | None] = {
    "no-token": None,
    "supplier": {"sub": "s-VLAIO", "dosis_supplier": "VLAIO"},
    "person": {"sub": "person-1", "dosis_enterprise": ENTERPRISE_A, "dosis_roles": [ROLE]},
    "other-person": {"sub": "person-2", "dosis_enterprise": ENTERPRISE_B, "dosis_roles": [ROLE]},
    "catalog-admin": {"sub": "operator", "dosis_admin_roles": ["catalog-admin"]},
    "auditor": {"sub": "operator", "dosis_admin_roles": ["auditor"]},
    "key-admin": {"sub": "operator", "dosis_admin_roles": ["key-admin"]},
    "all-admin": {"sub": "operator", "dosis_admin_roles": ["catalog-admin", "auditor", "key-admin"]},
    "no-claims": {},  # valid signature, issuer, audience and expiry; no sub, no dosis_* claim
}


def metadata_for(settings, caller: str) -> tuple:
    claims = CALLERS[caller]
    return () if claims is None else bearer(mint_dev_token(settings, claims))


# --- the table --------------------------------------------------------------------------

WITH_A_TOKEN = frozenset(CALLERS) - {"no-token"}
EVERYONE = frozenset(CALLERS)


@dataclass(frozen=True)
class Row:
    """Who may call a method (the person acts for ENTERPRISE_A, which the requests name), and
    a minimal valid request (the messages of its request stream)."""

    allowed: frozenset[str]
    request: Callable[[], list[Message]]


TABLE: dict[str, Row] = {
    # IngestService: suppliers only.
    "/dosis.v1.IngestService/PushStatus": Row(
        frozenset({"supplier"}), lambda: [push_request(status(dossier="D-push"))]
    ),
    "/dosis.v1.IngestService/StreamStatuses": Row(
        frozenset({"supplier"}), lambda: [push_request(status(dossier="D-stream"), "s-1")]
    ),
    "/dosis.v1.IngestService/UploadBatch": Row(
        frozenset({"supplier"}), lambda: list(requests(csv_bytes([row("D-upload")])))
    ),
    "/dosis.v1.IngestService/DeleteDossier": Row(
        frozenset({"supplier"}), lambda: [ingest_pb2.DeleteDossierRequest(product_id="1502", dossier_id="D-none")]
    ),
    # QueryService: the person acting for the enterprise; public dossiers need no token.
    "/dosis.v1.QueryService/ListDossiers": Row(
        frozenset({"person"}), lambda: [query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A)]
    ),
    "/dosis.v1.QueryService/GetDossier": Row(
        frozenset({"person"}),
        lambda: [query_pb2.GetDossierRequest(enterprise_number=ENTERPRISE_A, product_id="1502", dossier_id="D-1")],
    ),
    "/dosis.v1.QueryService/ListPublicDossiers": Row(
        EVERYONE, lambda: [query_pb2.ListPublicDossiersRequest(enterprise_number=ENTERPRISE_A)]
    ),
    # CatalogService: reading needs any valid token; changing needs catalog-admin.
    "/dosis.v1.CatalogService/GetProduct": Row(WITH_A_TOKEN, lambda: [catalog_pb2.GetProductRequest(id="1502")]),
    "/dosis.v1.CatalogService/ListProducts": Row(WITH_A_TOKEN, lambda: [catalog_pb2.ListProductsRequest()]),
    "/dosis.v1.CatalogService/UpsertProduct": Row(
        frozenset({"catalog-admin", "all-admin"}),
        lambda: [
            catalog_pb2.UpsertProductRequest(
                product=catalog_pb2.Product(id="9901", name="Test product", supplier_ids=["VLAIO"], active=True)
            )
        ],
    ),
    "/dosis.v1.CatalogService/CheckProduct": Row(
        WITH_A_TOKEN, lambda: [catalog_pb2.CheckProductRequest(product_id="1502", supplier_id="VLAIO")]
    ),
    "/dosis.v1.CatalogService/ListStatusCodes": Row(WITH_A_TOKEN, lambda: [catalog_pb2.ListStatusCodesRequest()]),
    # AuditService: auditors only.
    "/dosis.v1.AuditService/ListAuditEvents": Row(
        frozenset({"auditor", "all-admin"}), lambda: [audit_pb2.ListAuditEventsRequest(page_size=1)]
    ),
}


def row_of(method: MethodDescriptor) -> Row:
    name = full_name(method)
    assert name in TABLE, f"{name} has no row in tests/rpc_helpers.py TABLE: who may call it?"
    return TABLE[name]


# --- calling any method with raw frames -------------------------------------------------


def call(
    channel: grpc.Channel, method: MethodDescriptor, frames: list[bytes], metadata: tuple, timeout: float = 10
) -> tuple[grpc.StatusCode, ErrorDetails | None]:
    """Send `frames` as the request (the first alone for a unary request); read the whole
    answer. The status code, and the error's details when it failed."""
    name = full_name(method)
    kwargs = {"metadata": metadata, "timeout": timeout}
    try:
        if method.client_streaming and method.server_streaming:
            list(channel.stream_stream(name)(iter(frames), **kwargs))
        elif method.client_streaming:
            channel.stream_unary(name)(iter(frames), **kwargs)
        elif method.server_streaming:
            list(channel.unary_stream(name)(frames[0], **kwargs))
        else:
            channel.unary_unary(name)(frames[0], **kwargs)
    except grpc.RpcError as error:
        return error.code(), error_details(error)
    return grpc.StatusCode.OK, None
