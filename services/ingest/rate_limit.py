"""Per-supplier ingest rate limits: one token bucket per supplier id.

A supplier's bucket holds up to `burst` tokens and refills at `rate` tokens a second; every
status a supplier sends takes one (a PushStatus, each StreamStatuses item), and so does each
UploadBatch and DeleteDossier call (a CSV list is metered per call, not per row: lists are
the bulk path, stored set-based at a fraction of a push's cost, and their size is already
bounded by the upload's own backpressure). What happens when the bucket is empty is the
caller's choice: `try_take` answers how long to wait (PushStatus and the others then refuse
with RESOURCE_EXHAUSTED and that delay as RetryInfo); `take` waits (a stream then slows
down through gRPC flow control, and no item is refused for going too fast: a supplier
streaming a backlog wants it stored at the allowed pace, not answered REJECTED and resent).

A rate of 0 means no limit. The clock is injectable so tests need not wait.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

_EPSILON = 1e-9


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        """rate: tokens per second per supplier (0: unlimited); burst: the bucket's size."""
        self.rate = rate
        self.burst = max(1, burst)
        self._clock = clock
        # Supplier ids come from verified tokens: a handful of agencies, so no eviction.
        self._buckets: dict[str, _Bucket] = {}

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def try_take(self, supplier_id: str) -> float:
        """Take one token: 0.0 when taken, else the seconds until one is available (none taken)."""
        if self.unlimited:
            return 0.0
        now = self._clock()
        bucket = self._buckets.get(supplier_id)
        if bucket is None:
            bucket = self._buckets[supplier_id] = _Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= 1.0 - _EPSILON:  # refills by float steps may fall a hair short
            bucket.tokens = max(0.0, bucket.tokens - 1.0)
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    async def take(self, supplier_id: str) -> None:
        """Take one token, waiting for it when the bucket is empty."""
        while (delay := self.try_take(supplier_id)) > 0:
            await asyncio.sleep(delay)
