"""QueryService caller identity: ListDossiers needs a person token, an expired one is
UNAUTHENTICATED, a formatted enterprise claim is accepted."""

from __future__ import annotations

import grpc

from dosis.v1 import query_pb2
from tests.helpers import ENTERPRISE_A, bearer, rpc_error, status
from tests.query_helpers import ROLE_A, ids, push


def test_list_dossiers_needs_a_person_token(stack):
    push(stack, status(dossier="D-1", public=True))
    request = query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A)
    get = query_pb2.GetDossierRequest(enterprise_number=ENTERPRISE_A, product_id="1502", dossier_id="D-1")

    for call, req in ((stack.query.ListDossiers, request), (stack.query.GetDossier, get)):
        assert rpc_error(call, req).code == grpc.StatusCode.UNAUTHENTICATED
        assert rpc_error(call, req, metadata=bearer("not-a-jwt")).code == grpc.StatusCode.UNAUTHENTICATED
        assert rpc_error(call, req, metadata=(("authorization", "Basic dXNlcjpwdw=="),)).code == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        supplier = rpc_error(call, req, metadata=stack.as_supplier("VLAIO"))
        assert supplier.code == grpc.StatusCode.PERMISSION_DENIED
        admin = rpc_error(call, req, metadata=bearer(stack.tokens.admin("catalog-admin", "auditor")))
        assert admin.code == grpc.StatusCode.PERMISSION_DENIED


def test_person_token_with_expired_time_is_unauthenticated(stack):
    from services.common.auth import mint_dev_token

    token = mint_dev_token(
        stack.settings,
        {"sub": "p", "dosis_enterprise": ENTERPRISE_A, "dosis_roles": [ROLE_A]},
        ttl_seconds=-120,
    )
    err = rpc_error(
        stack.query.ListDossiers,
        query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A),
        metadata=bearer(token),
    )
    assert err.code == grpc.StatusCode.UNAUTHENTICATED


def test_formatted_enterprise_claim_in_token_is_accepted(stack):
    push(stack, status(dossier="CLAIM", roles=(ROLE_A,)))
    token = stack.tokens.person("0316.380.841", ROLE_A)
    reply = stack.query.ListDossiers(
        query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A), metadata=bearer(token)
    )
    assert ids(reply.dossiers) == ["CLAIM"]
