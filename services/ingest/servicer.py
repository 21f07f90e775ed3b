"""IngestService: validate, check the product with the catalog, store."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter

from opentelemetry import trace

from dosis.v1 import ingest_pb2, ingest_pb2_grpc
from services.catalog.client import CatalogClient
from services.common import errors
from services.common.auth import Identity, Policy
from services.common.calls import change_event, change_recorded, current_identity
from services.common.errors import Violation
from services.ingest import csv_batch
from services.ingest.rate_limit import RateLimiter
from services.ingest.validation import validate_status
from services.store.dossiers import DossierStore
from services.store.outcomes import Outcome
from services.telemetry import Telemetry

log = logging.getLogger(__name__)

POLICIES = {
    "PushStatus": Policy.SUPPLIER,
    "StreamStatuses": Policy.SUPPLIER,
    "UploadBatch": Policy.SUPPLIER,
    "DeleteDossier": Policy.SUPPLIER,
}

GRACE_WITHOUT_SIZE = 0.25  # seconds; see UploadBatch
STREAM_WINDOW = 1024  # items of one stream queued for storage before their answers are sent

_OUTCOMES = {
    Outcome.CREATED: ingest_pb2.PUSH_OUTCOME_CREATED,
    Outcome.UPDATED: ingest_pb2.PUSH_OUTCOME_UPDATED,
    Outcome.UNCHANGED: ingest_pb2.PUSH_OUTCOME_UNCHANGED,
    Outcome.STALE: ingest_pb2.PUSH_OUTCOME_STALE,
}


def _rejected(request: ingest_pb2.PushStatusRequest, error: errors.DosisError) -> ingest_pb2.PushStatusResponse:
    return ingest_pb2.PushStatusResponse(
        outcome=ingest_pb2.PUSH_OUTCOME_REJECTED, request_id=request.request_id, error=error.to_status()
    )


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    """Validation and catalog check per call; storage through the group-commit writer."""

    def __init__(
        self, store: DossierStore, catalog: CatalogClient, telemetry: Telemetry, limiter: RateLimiter | None = None
    ):
        self._store = store
        self._catalog = catalog
        self._telemetry = telemetry
        self._limiter = limiter or RateLimiter(0, 0)

    def _admit(self, identity: Identity) -> None:
        """One token of the supplier's rate limit, or RESOURCE_EXHAUSTED with a RetryInfo."""
        if delay := self._limiter.try_take(identity.supplier_id):
            raise errors.rate_limited(identity.supplier_id, delay)

    def _count(self, outcome: int, identity: Identity) -> None:
        name = ingest_pb2.PushOutcome.Name(outcome).removeprefix("PUSH_OUTCOME_").lower()
        self._telemetry.count_outcome(name, identity.supplier_id)

    async def _push(self, request: ingest_pb2.PushStatusRequest, identity: Identity) -> int:
        stored = await self._submit(request, identity, one_call=True)
        outcome = _OUTCOMES[await stored]
        if self._store.writes_audit:
            change_recorded()
        return outcome

    async def _submit(
        self, request: ingest_pb2.PushStatusRequest, identity: Identity, one_call: bool = False
    ) -> asyncio.Future:
        """Validate, check the product, and queue the status for storage (in call order);
        a PushStatus (one_call) with its call's audit event, committed with it."""
        if not request.HasField("status"):
            raise errors.invalid_argument([Violation("status", "MISSING_STATUS", "is required")])
        values = validate_status(request.status)
        await self._check_product(values["product_id"], identity)
        event = change_event(values["enterprise_number"], 1) if one_call and self._store.writes_audit else None
        # Waits while the writer's queue is full: a slow database slows the callers down.
        return await self._store.submit(identity.supplier_id, values, event)

    async def _check_product(self, product_id: str, identity: Identity) -> None:
        check = await self._catalog.check_product(product_id, identity.supplier_id, identity.token)
        if not check.exists:
            raise errors.failed_precondition("UNKNOWN_PRODUCT", f"product {product_id!r} is not in the catalog")
        if not check.active:
            raise errors.failed_precondition("PRODUCT_INACTIVE", f"product {product_id!r} is no longer active")
        if not check.supplier_allowed:
            raise errors.permission_denied(
                "SUPPLIER_NOT_ALLOWED", f"supplier {identity.supplier_id} does not serve product {product_id!r}"
            )

    async def PushStatus(self, request, context):
        identity = current_identity()
        try:
            self._admit(identity)
            outcome = await self._push(request, identity)
        except errors.DosisError:
            self._count(ingest_pb2.PUSH_OUTCOME_REJECTED, identity)
            raise
        self._count(outcome, identity)
        trace.get_current_span().set_attribute("dosis.outcome", ingest_pb2.PushOutcome.Name(outcome))
        return ingest_pb2.PushStatusResponse(outcome=outcome, request_id=request.request_id)

    async def StreamStatuses(self, request_iterator, context):
        """Items are validated and queued in order while earlier ones are still being
        stored, so a stream fills group commits instead of waiting for one commit per item;
        answers go out in order, each once its item is stored (or rejected)."""
        identity = current_identity()
        window: asyncio.Queue = asyncio.Queue(maxsize=STREAM_WINDOW)
        reader = asyncio.ensure_future(self._read_stream(request_iterator, identity, window))
        counts: Counter[int] = Counter()
        span = trace.get_current_span()
        try:
            while (entry := await window.get()) is not None:
                request, stored = entry
                reply = await self._answer(request, stored)
                counts[reply.outcome] += 1
                self._count(reply.outcome, identity)
                yield reply
            await reader  # a broken request stream ends the call with its error
        finally:
            reader.cancel()
            # Outcome counts on the stream's span: what the stream did, at a glance.
            for outcome, count in counts.items():
                name = ingest_pb2.PushOutcome.Name(outcome).removeprefix("PUSH_OUTCOME_").lower()
                span.set_attribute(f"dosis.outcomes.{name}", count)

    async def _read_stream(self, request_iterator, identity: Identity, window: asyncio.Queue) -> None:
        try:
            async for request in request_iterator:
                # Over the rate limit a stream waits (flow control slows the sender) rather
                # than refusing items: see services.ingest.rate_limit.
                await self._limiter.take(identity.supplier_id)
                try:
                    stored: asyncio.Future | Exception = await self._submit(request, identity)
                except Exception as exc:  # noqa: BLE001 - answered as REJECTED in order
                    stored = exc
                await window.put((request, stored))
        finally:
            await window.put(None)

    async def _answer(self, request, stored: asyncio.Future | Exception) -> ingest_pb2.PushStatusResponse:
        try:
            if isinstance(stored, Exception):
                raise stored
            outcome = _OUTCOMES[await stored]
        except errors.DosisError as exc:
            return _rejected(request, exc)
        except Exception:  # noqa: BLE001 - one item's failure never ends the stream
            log.exception("unexpected error on a StreamStatuses item")
            return _rejected(request, errors.internal())
        return ingest_pb2.PushStatusResponse(outcome=outcome, request_id=request.request_id)

    async def UploadBatch(self, request_iterator, context):
        identity = current_identity()
        self._admit(identity)  # one token per list, whatever its rows
        first = await anext(aiter(request_iterator), None)
        if first is None or not first.HasField("header"):
            raise errors.invalid_argument([Violation("header", "MISSING_HEADER", "the first message must be the header")])
        header = first.header
        if header.mode == ingest_pb2.BATCH_MODE_REPLACE_PRODUCT:
            errors.require(header, "product_id")
            await self._check_product(header.product_id, identity)  # refuse the whole file up front
        loop = asyncio.get_running_loop()

        def check_product(product_id: str) -> errors.DosisError | None:
            future = asyncio.run_coroutine_threadsafe(self._check_product(product_id, identity), loop)
            try:
                future.result(timeout=30)
            except errors.DosisError as exc:
                return exc
            return None

        loader = csv_batch.BatchLoader(self._store, identity.supplier_id, header, check_product, self._telemetry.tracer)
        started = time.perf_counter()
        upload = csv_batch.Upload(loader)
        received = 0
        try:
            async for message in request_iterator:
                if not message.HasField("chunk"):
                    raise errors.invalid_argument(
                        [Violation("header", "DUPLICATE_HEADER", "only the first message is a header")]
                    )
                received += len(message.chunk)
                if not await upload.send(message.chunk):
                    break  # the loader stopped early (a bad header): its error is the answer
            await upload.end_of_stream()
            if not header.size_bytes:
                # Without size_bytes a cut stream cannot be told from a whole one: grpc ends the
                # request stream first and delivers the client's cancellation just after. Give
                # it that moment before the last rows (and any delete) are stored.
                await asyncio.sleep(GRACE_WITHOUT_SIZE)
                if context.cancelled():
                    raise asyncio.CancelledError()
            if header.size_bytes and received != header.size_bytes:
                raise errors.invalid_argument([Violation(
                    "header.size_bytes", "TRUNCATED_UPLOAD",
                    f"the stream brought {received} of {header.size_bytes} bytes; the last rows were not stored",
                )])
            report = (await upload.finish()).message()
        except BaseException:
            upload.abort()
            raise
        span = trace.get_current_span()
        span.set_attribute("dosis.batch.rows", report.rows_read)
        span.set_attribute("dosis.batch.rejected", report.rejected)
        self._telemetry.batch_rates.record(report.rows_read / max(time.perf_counter() - started, 1e-6))
        for name in ("created", "updated", "unchanged", "stale", "rejected"):
            if count := getattr(report, name):
                self._telemetry.count_outcome(name, identity.supplier_id, count)
        return report

    async def DeleteDossier(self, request, context):
        identity = current_identity()
        self._admit(identity)
        errors.require(request, "product_id", "dossier_id")
        event = change_event("", 1) if self._store.writes_audit else None
        if not await self._store.delete(identity.supplier_id, request.product_id, request.dossier_id, event):
            raise errors.not_found("DOSSIER_NOT_FOUND", "this supplier has no such dossier")
        if event is not None:
            change_recorded()
        return ingest_pb2.DeleteDossierResponse()

    async def close(self) -> None:
        await self._store.close()
        await self._catalog.close()
