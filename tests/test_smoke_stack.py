from dosis.v1 import ingest_pb2, query_pb2
from tests.helpers import ENTERPRISE_A, push_request, status


def test_push_then_list(stack):
    reply = stack.ingest.PushStatus(push_request(status()), metadata=stack.as_supplier())
    assert reply.outcome == ingest_pb2.PUSH_OUTCOME_CREATED
    listed = stack.query.ListDossiers(
        query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A),
        metadata=stack.as_person(ENTERPRISE_A, "Bedrijfsleider"),
    )
    assert [d.dossier_id for d in listed.dossiers] == ["D-1"]
    assert listed.dossiers[0].product_name == "KMO-portefeuille (opleiding en advies)"
