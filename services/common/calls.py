"""Per-call cross-cutting work, in one interceptor: who is calling, and errors → gRPC status.

Each service declares a Policy per method. The interceptor wraps the method's handler so
that, inside the same task as the servicer code, it
  1. verifies the bearer token against that policy and puts the Identity in a contextvar
     (read with current_identity()); a method without a policy is refused (fail closed);
  2. turns a DosisError into the google.rpc.Status trailer, and anything unexpected into
     INTERNAL after logging it;
  3. opens the server span (continuing the caller's traceparent) and records the RPC
     duration metric;
  4. records the call's audit event (services.common.audit_trail), denied calls included,
     and answers only once it is durable: a call whose event cannot be stored fails.
  5. turns a request frame that is not the method's message into INVALID_ARGUMENT
     (UNREADABLE_REQUEST), after the token is checked: grpc's own answer would be UNKNOWN
     for a unary request and INTERNAL from inside a request stream.
Health and reflection are not dosis methods and pass through untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Callable, Mapping

import grpc
from grpc import aio
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from services.common import errors
from services.common.audit_trail import NOT_AUDITED, CallRecorder, count_of, enterprise_of
from services.common.auth import ANONYMOUS, Identity, Policy, TokenVerifier, authorize, bearer_token
from services.common.errors import Violation
from services.store.audit import AuditEntry
from services.telemetry import Telemetry

log = logging.getLogger(__name__)

_identity: contextvars.ContextVar[Identity] = contextvars.ContextVar("dosis_identity", default=ANONYMOUS)


def current_identity() -> Identity:
    return _identity.get()


def change_event(enterprise: str, count: int) -> AuditEntry | None:
    """The current call's audit event as it reads when its change commits, for the store to
    write in the change's own transaction (store.audit: the outbox); None when the call is
    not audited. Call change_recorded() once the change committed."""
    call = _call.get()
    if call is None or call.recorder is None:
        return None
    return call.recorder.entry(call.method, _identity.get(), enterprise, grpc.StatusCode.OK.name, count)


def change_recorded() -> None:
    """The change and its event committed together: the interceptor writes no second event."""
    if (call := _call.get()) is not None:
        call.unrecorded = False


async def _abort(context: aio.ServicerContext, error: errors.DosisError) -> None:
    await context.abort_with_status(error.grpc_status())


class CallInterceptor(aio.ServerInterceptor):
    def __init__(
        self,
        verifier: TokenVerifier,
        policies: Mapping[str, Policy],
        service_prefixes: tuple[str, ...],
        telemetry: Telemetry,
        recorder: CallRecorder | None = None,
    ):
        """policies: full method name (/dosis.v1.IngestService/PushStatus) → Policy."""
        self._verifier = verifier
        self._policies = dict(policies)
        self._prefixes = service_prefixes
        self._telemetry = telemetry
        self._recorder = recorder
        # method → (the servicer's handler, its wrapped form): wrapping builds closures and a
        # context manager factory, work that only depends on the method.
        self._wrapped: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or not method.startswith(self._prefixes):
            return handler
        cached = self._wrapped.get(method)
        if cached is None or cached[0] is not handler:
            authenticate = self._authenticator(self._policies.get(method), method)
            recorder = None if method in NOT_AUDITED else self._recorder
            cached = self._wrapped[method] = (
                handler, _wrap(handler, authenticate, method, self._telemetry, recorder)
            )
        return cached[1]

    def _authenticator(self, policy: Policy | None, method: str) -> Callable[[tuple], None]:
        def authenticate(metadata: tuple) -> None:
            if policy is None:
                raise errors.permission_denied("METHOD_NOT_ALLOWED", f"{method} has no access policy")
            token = bearer_token(metadata)
            try:
                _identity.set(authorize(policy, self._verifier, token))
            except errors.DosisError as exc:
                if exc.code == grpc.StatusCode.PERMISSION_DENIED and token:
                    _identity.set(self._verifier.verify(token))  # valid, not allowed: the audit names who
                raise

        return authenticate


class _Unreadable:
    """What the request deserializer gives for a frame that does not parse as the message."""


_UNREADABLE = _Unreadable()


def _tolerant(deserialize: Callable[[bytes], object] | None) -> Callable[[bytes], object] | None:
    if deserialize is None:
        return None

    def tolerant(frame: bytes) -> object:
        try:
            return deserialize(frame)
        except Exception:  # noqa: BLE001 - DecodeError, or whatever else the parser raises
            return _UNREADABLE

    return tolerant


def _unreadable() -> errors.DosisError:
    return errors.invalid_argument(
        [Violation("request", "UNREADABLE_REQUEST", "a request frame is not a valid message of this method")]
    )


async def _readable(requests):
    """The request stream, failing with INVALID_ARGUMENT at the first unreadable frame."""
    async for request in requests:
        if request is _UNREADABLE:
            raise _unreadable()
        yield request


# gRPC codes that are the server's fault (OpenTelemetry's semantic conventions for RPC).
_SERVER_ERRORS = {
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DATA_LOSS,
}


# Metadata keys the propagators read (W3C trace context and baggage).
_PROPAGATED = frozenset(("traceparent", "tracestate", "baggage"))


def _caller_context(metadata: tuple):
    """The caller's trace context, or None (a new trace) when it sent none: most callers do
    not, and the propagators' extract is not free."""
    for key, _ in metadata:  # a plain loop: any() over a generator costs a µs here
        if key in _PROPAGATED:
            return propagate.extract(dict(metadata))
    return None


class _Call:
    """What the audit records of a call in progress."""

    __slots__ = ("method", "recorder", "enterprise", "count", "unrecorded")

    def __init__(self, method: str, recorder: CallRecorder | None, enterprise: str):
        self.method = method
        self.recorder = recorder
        self.enterprise = enterprise
        self.count = 0
        # The interceptor has yet to record its event: false once it tried, or once the
        # event committed with the call's change (change_recorded).
        self.unrecorded = recorder is not None


_call: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("dosis_call", default=None)


def _wrap(
    handler: grpc.RpcMethodHandler, authenticate, method: str, telemetry: Telemetry, recorder: CallRecorder | None
) -> grpc.RpcMethodHandler:
    """The handler inside the cross-cutting work: server span, identity, error mapping,
    metrics, audit event.

    The server span is opened here rather than by the library's grpc.aio server interceptor:
    this wrapper runs for every call anyway, and the library's adds about 200 µs a call
    (benchmarks/tracing_overhead.py), several times the span itself. The span is a light
    one (light_spans.py) for the same reason. Name, kind and attributes follow the same
    RPC semantic conventions; the caller's W3C traceparent is continued.
    """
    service, _, name = method.lstrip("/").partition("/")
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}
    # The duration metric's attributes per status code, built once: every call records one.
    metric_attributes = {code: {**attributes, "rpc.grpc.status_code": code.value[0]} for code in grpc.StatusCode}

    def unexpected(exc: Exception) -> errors.DosisError:
        log.exception("unexpected error in %s", method, exc_info=exc)
        return errors.internal()

    tracer = telemetry.tracer if telemetry.tracing else None

    def finish(span, code: grpc.StatusCode, reason: str) -> None:
        span.set_attribute("rpc.grpc.status_code", code.value[0])
        if code in _SERVER_ERRORS:
            span.set_status(Status(StatusCode.ERROR, reason or code.name))
        span.end()

    async def audit(call: _Call, code: grpc.StatusCode) -> None:
        call.unrecorded = False  # one attempt per call, whatever comes of it
        await recorder.record(method, _identity.get(), call.enterprise, code.name, call.count)

    async def audit_failure(call: _Call, code: grpc.StatusCode) -> None:
        """A failed call's event (unless one was stored or tried already): stored if it can
        be; the caller gets the call's own error."""
        if not call.unrecorded:
            return
        try:
            await audit(call, code)
        except Exception:  # noqa: BLE001 - logged; the call fails anyway
            log.exception("the audit event of a failed %s call could not be stored", method)

    @contextlib.asynccontextmanager
    async def guarded(context: aio.ServicerContext, request: object):
        started, code, reason = time.perf_counter(), grpc.StatusCode.OK, ""
        span = token = None
        # Read once: grpc.aio builds the tuple anew on every invocation_metadata() call.
        metadata = context.invocation_metadata() or ()
        if tracer is not None:
            span = tracer.start_span(method, _caller_context(metadata), SpanKind.SERVER, attributes)
            token = otel_context.attach(trace.set_span_in_context(span))
        call = _Call(method, recorder, enterprise_of(request) if recorder is not None else "")
        _call.set(call)  # each call runs in a task (a context) of its own, as _identity
        try:
            authenticate(metadata)
            yield call
            if call.unrecorded:
                try:
                    await audit(call, code)
                except Exception:  # noqa: BLE001 - no answer without its event
                    log.exception("the audit event of a %s call could not be stored", method)
                    raise errors.unavailable(
                        "AUDIT_UNAVAILABLE", "the call could not be recorded in the audit trail; retry later"
                    ) from None
        except aio.AbortError:
            code = grpc.StatusCode.UNKNOWN
            raise
        except errors.DosisError as exc:
            code, reason = exc.code, exc.reason
            await audit_failure(call, code)
            await _abort(context, exc)
        except Exception as exc:  # noqa: BLE001 - the client gets INTERNAL, the log the cause
            code, reason = grpc.StatusCode.INTERNAL, "INTERNAL"
            await audit_failure(call, code)
            await _abort(context, unexpected(exc))
        except BaseException:
            # Cancelled (the client went away, or shutdown): recorded without waiting, as the
            # task may not wait any more.
            code, reason = grpc.StatusCode.CANCELLED, "CANCELLED"
            if call.unrecorded:
                _background(audit_failure(call, code))
            raise
        finally:
            telemetry.rpc_duration.record((time.perf_counter() - started) * 1000, metric_attributes[code])
            if span is not None:
                finish(span, code, reason)
                otel_context.detach(token)

    def readable(request):
        """The request (or request stream) the servicer gets: never an unreadable frame."""
        if handler.request_streaming:
            return _readable(request)
        if request is _UNREADABLE:
            raise _unreadable()
        return request

    if handler.response_streaming:
        inner = handler.unary_stream or handler.stream_stream

        async def streaming(request, context):
            async with guarded(context, request) as call:
                async for response in inner(readable(request), context):
                    call.count += count_of(response)
                    yield response

        factory = grpc.unary_stream_rpc_method_handler if handler.unary_stream else grpc.stream_stream_rpc_method_handler
        behavior = streaming
    else:
        inner = handler.unary_unary or handler.stream_unary

        async def unary(request, context):
            async with guarded(context, request) as call:
                response = await inner(readable(request), context)
                call.count = count_of(response)
                return response

        factory = grpc.unary_unary_rpc_method_handler if handler.unary_unary else grpc.stream_unary_rpc_method_handler
        behavior = unary
    return factory(
        behavior,
        request_deserializer=_tolerant(handler.request_deserializer),
        response_serializer=handler.response_serializer,
    )


_pending: set[asyncio.Task] = set()  # tasks started without waiting, kept until done


def _background(coroutine) -> None:
    task = asyncio.ensure_future(coroutine)
    _pending.add(task)
    task.add_done_callback(_pending.discard)
