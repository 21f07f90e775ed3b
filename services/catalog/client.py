"""How ingest and query ask the catalog, with a short-lived cache.

Calls carry the caller's own bearer token (the catalog checks it like any other call).
The catalog being down is UNAVAILABLE for ingest (retry later) and only empty product
names for query (the answer is still correct without them).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import grpc
from cachetools import TTLCache
from grpc import aio
from opentelemetry import trace

from dosis.client import bearer
from dosis.v1 import catalog_pb2, catalog_pb2_grpc
from services.common import errors
from services.telemetry import Telemetry

CHECK_TTL_SECONDS = 30.0
REFUSAL_TTL_SECONDS = 5.0  # a refusal is re-asked sooner: the product may just have been added
NAME_TTL_SECONDS = 300.0
MAX_CACHED = 10_000  # per cache; past it the least recently used entry goes
DEADLINE_SECONDS = 3.0


@dataclass(frozen=True)
class ProductCheck:
    exists: bool
    active: bool
    supplier_allowed: bool

    @property
    def allowed(self) -> bool:
        return self.exists and self.active and self.supplier_allowed


# gRPC's reconnect back-off grows towards two minutes: after a long catalog outage ingest
# would wait that long to notice it is back. Five seconds at most.
_CHANNEL_OPTIONS = [("grpc.max_reconnect_backoff_ms", 5000), ("grpc.initial_reconnect_backoff_ms", 500)]


class CatalogClient:
    def __init__(self, address: str, telemetry: Telemetry, clock: Callable[[], float] = time.monotonic):
        """clock: the caches' time source (tests move it on instead of waiting)."""
        self._telemetry = telemetry
        self._channel = aio.insecure_channel(
            address, options=_CHANNEL_OPTIONS, interceptors=telemetry.client_interceptors()
        )
        self._stub = catalog_pb2_grpc.CatalogServiceStub(self._channel)
        # Only the event loop touches these (the CSV loader's thread asks through it too), so
        # they need no lock.
        self._checks: TTLCache[tuple[str, str], ProductCheck] = TTLCache(MAX_CACHED, CHECK_TTL_SECONDS, clock)
        self._refusals: TTLCache[tuple[str, str], ProductCheck] = TTLCache(
            MAX_CACHED, REFUSAL_TTL_SECONDS, clock
        )
        self._names: TTLCache[str, str] = TTLCache(MAX_CACHED, NAME_TTL_SECONDS, clock)

    async def close(self) -> None:
        await self._channel.close()

    async def check_product(self, product_id: str, supplier_id: str, token: str) -> ProductCheck:
        key = (product_id, supplier_id)
        cached = self._checks.get(key) or self._refusals.get(key)
        # On the caller's span (the ingest RPC): whether this push waited for the catalog.
        trace.get_current_span().set_attribute("dosis.catalog.cache_hit", cached is not None)
        self._telemetry.count_cache_lookup(cached is not None)
        if cached is not None:
            return cached
        return await self._ask(key, token)

    async def _ask(self, key: tuple[str, str], token: str) -> ProductCheck:
        product_id, supplier_id = key
        try:
            reply = await self._stub.CheckProduct(
                catalog_pb2.CheckProductRequest(product_id=product_id, supplier_id=supplier_id),
                metadata=bearer(token),
                timeout=DEADLINE_SECONDS,
            )
        except grpc.RpcError as exc:
            raise errors.unavailable(
                "CATALOG_UNAVAILABLE", f"the catalog could not be asked ({exc.code().name}); retry later"
            ) from None
        result = ProductCheck(reply.exists, reply.active, reply.supplier_allowed)
        (self._checks if result.allowed else self._refusals)[key] = result
        return result

    async def product_names(self, product_ids: set[str], token: str) -> dict[str, str]:
        """Names of the products that the catalog knows; missing ones are left out."""
        names: dict[str, str] = {}
        for product_id in sorted(product_ids):
            cached = self._names.get(product_id)
            if cached is None:
                cached = await self._fetch_name(product_id, token)
                if cached is None:
                    continue
                self._names[product_id] = cached
            names[product_id] = cached
        return names

    async def _fetch_name(self, product_id: str, token: str) -> str | None:
        try:
            product = await self._stub.GetProduct(
                catalog_pb2.GetProductRequest(id=product_id), metadata=bearer(token), timeout=DEADLINE_SECONDS
            )
        except grpc.RpcError:
            return None
        return product.name
