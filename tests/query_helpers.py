"""Seeding dossiers through IngestService and reading them through QueryService.

Shared by the QueryService tests (tests/test_query_*.py). Every test there runs on SQLite and
PostgreSQL (the `stack` fixture); data goes in through the ingest service, as a supplier would push it.
"""

from __future__ import annotations

import grpc

from dosis.v1 import dossier_status_pb2 as pb
from dosis.v1 import ingest_pb2, query_pb2
from tests.helpers import ENTERPRISE_A, push_request

KMO_NAME = "KMO-portefeuille (opleiding en advies)"  # 1502, the newer IPDC title
HINDER_NAME = "Hinderpremie"  # 1519
OMGEVING_NAME = "Omgevingsvergunning voor ingedeelde inrichtingen"  # 2031

# Role strings distinctive enough to search for in raw response bytes.
ROLE_A = "Rol-Zaakvoerder-7f3a"
ROLE_B = "Rol-Boekhouder-91c2"
ROLE_C = "Rol-Stagiair-0d4e"
ROLE_PAGE = "Rol-Paginering-5b8e"

INVALID = grpc.StatusCode.INVALID_ARGUMENT


def push(stack, message: pb.DossierStatus, supplier: str = "VLAIO") -> int:
    return stack.ingest.PushStatus(push_request(message), metadata=stack.as_supplier(supplier)).outcome


def stream(stack, messages: list[pb.DossierStatus], supplier: str = "VLAIO") -> list[int]:
    """Push many statuses over one StreamStatuses call; every item must be accepted."""
    requests = [push_request(m, request_id=f"r{i}") for i, m in enumerate(messages)]
    replies = list(stack.ingest.StreamStatuses(iter(requests), metadata=stack.as_supplier(supplier)))
    assert len(replies) == len(requests)
    rejected = [r for r in replies if r.outcome == ingest_pb2.PUSH_OUTCOME_REJECTED]
    assert not rejected, rejected[0].error
    return [r.outcome for r in replies]


def list_page(stack, enterprise=ENTERPRISE_A, roles=(ROLE_A,), *, person_enterprise=None, **request):
    return stack.query.ListDossiers(
        query_pb2.ListDossiersRequest(enterprise_number=enterprise, **request),
        metadata=stack.as_person(person_enterprise or enterprise, *roles),
    )


def walk(stack, enterprise=ENTERPRISE_A, roles=(ROLE_A,), page_size=0, between_pages=None, **request):
    """All pages of ListDossiers: (dossiers in order, number of pages)."""
    out, token, pages = [], "", 0
    while True:
        page = list_page(stack, enterprise, roles, page_size=page_size, page_token=token, **request)
        pages += 1
        out.extend(page.dossiers)
        token = page.next_page_token
        if not token:
            return out, pages
        assert len(page.dossiers) == page_size
        if between_pages is not None:
            between_pages(pages)
        assert pages < 1000, "pagination does not end"


def ids(dossiers) -> list[str]:
    return [d.dossier_id for d in dossiers]
