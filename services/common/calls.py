"""Per-call cross-cutting work, in one interceptor: who is calling, and errors → gRPC status.

Each service declares a Policy per method. The interceptor wraps the method's handler so
that, inside the same task as the servicer code, it
  1. verifies the bearer token against that policy and puts the Identity in a contextvar
     (read with current_identity()); a method without a policy is refused (fail closed);
  2. turns a DosisError into the google.rpc.Status trailer, and anything unexpected into
     INTERNAL after logging it.
Health and reflection are not dosis methods and pass through untouched.
This is also the one place that will know a call's identity and outcome for the audit trail.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable, Mapping

import grpc
from grpc import aio

from services.common import errors
from services.common.auth import ANONYMOUS, Identity, Policy, TokenVerifier, authorize, bearer_token
from services.common.telemetry import Telemetry

log = logging.getLogger(__name__)

_identity: contextvars.ContextVar[Identity] = contextvars.ContextVar("dosis_identity", default=ANONYMOUS)


def current_identity() -> Identity:
    return _identity.get()


async def _abort(context: aio.ServicerContext, error: errors.DosisError) -> None:
    await context.abort(error.code, error.message, trailing_metadata=errors.trailing_metadata(error))


class CallInterceptor(aio.ServerInterceptor):
    def __init__(
        self,
        verifier: TokenVerifier,
        policies: Mapping[str, Policy],
        service_prefixes: tuple[str, ...],
        telemetry: Telemetry,
    ):
        """policies: full method name (/dosis.v1.IngestService/PushStatus) → Policy."""
        self._verifier = verifier
        self._policies = dict(policies)
        self._prefixes = service_prefixes
        self._telemetry = telemetry

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(self._prefixes):
            return handler
        policy = self._policies.get(method)
        authenticate = self._authenticator(policy, method)
        return _wrap(handler, authenticate, method, self._telemetry)

    def _authenticator(self, policy: Policy | None, method: str) -> Callable[[aio.ServicerContext], None]:
        def authenticate(context: aio.ServicerContext) -> None:
            if policy is None:
                raise errors.permission_denied("METHOD_NOT_ALLOWED", f"{method} has no access policy")
            token = bearer_token(context.invocation_metadata())
            _identity.set(authorize(policy, self._verifier, token))

        return authenticate


def _wrap(handler: grpc.RpcMethodHandler, authenticate, method: str, telemetry: Telemetry) -> grpc.RpcMethodHandler:
    service, _, name = method.lstrip("/").partition("/")

    def unexpected(exc: Exception) -> errors.DosisError:
        log.exception("unexpected error in %s", method, exc_info=exc)
        return errors.internal()

    def record(started: float, code: grpc.StatusCode) -> None:
        telemetry.rpc_duration.record(
            (time.perf_counter() - started) * 1000,
            {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name, "rpc.grpc.status_code": code.value[0]},
        )

    if handler.response_streaming:
        inner = handler.unary_stream or handler.stream_stream

        async def streaming(request, context):
            started, code = time.perf_counter(), grpc.StatusCode.OK
            try:
                authenticate(context)
                async for response in inner(request, context):
                    yield response
            except aio.AbortError:
                code = grpc.StatusCode.UNKNOWN
                raise
            except errors.DosisError as exc:
                code = exc.code
                await _abort(context, exc)
            except Exception as exc:  # noqa: BLE001 - the client gets INTERNAL, the log the cause
                code = grpc.StatusCode.INTERNAL
                await _abort(context, unexpected(exc))
            finally:
                record(started, code)

        factory = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
        behavior = streaming
    else:
        inner = handler.unary_unary or handler.stream_unary

        async def unary(request, context):
            started, code = time.perf_counter(), grpc.StatusCode.OK
            try:
                authenticate(context)
                return await inner(request, context)
            except aio.AbortError:
                code = grpc.StatusCode.UNKNOWN
                raise
            except errors.DosisError as exc:
                code = exc.code
                await _abort(context, exc)
            except Exception as exc:  # noqa: BLE001
                code = grpc.StatusCode.INTERNAL
                await _abort(context, unexpected(exc))
            finally:
                record(started, code)

        factory = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
        behavior = unary
    return factory(
        behavior,
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )
