"""Every server offers health and reflection; unknown methods are refused."""

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from services.common.server import SERVICE_NAMES


@pytest.mark.parametrize("name", ["ingest", "query", "catalog"])
def test_health_and_reflection(stack, name):
    channel = stack.channels[name]
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE_NAMES[name]):
        reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with pytest.raises(grpc.RpcError) as info:
        health.Check(health_pb2.HealthCheckRequest(service="dosis.v1.Nope"), timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    responses = list(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
    names = {s.name for s in responses[0].list_services_response.service}
    assert SERVICE_NAMES[name] in names and "grpc.health.v1.Health" in names


def test_health_reports_not_serving_during_shutdown(stack, loop_thread):
    running = stack.servers["catalog"]
    loop_thread.run(running.health.enter_graceful_shutdown())
    health = health_pb2_grpc.HealthStub(stack.channels["catalog"])
    reply = health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAMES["catalog"]), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING


def test_method_without_policy_is_refused(stack):
    # A raw call to a dosis method name the server does not implement.
    call = stack.channels["query"].unary_unary("/dosis.v1.QueryService/DropEverything")
    with pytest.raises(grpc.RpcError) as info:
        call(b"", timeout=5)
    assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
