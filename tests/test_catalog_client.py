"""The catalog client's caches on a real catalog server: how long an answer is kept.

The client's clock is the test's, moved on by hand instead of waiting out the TTLs.
"""

from __future__ import annotations

import pytest

from dosis.v1 import catalog_pb2
from services.catalog.client import (
    CHECK_TTL_SECONDS,
    NAME_TTL_SECONDS,
    REFUSAL_TTL_SECONDS,
    CatalogClient,
    ProductCheck,
)
from services.telemetry import Telemetry
from tests.helpers import bearer

ALLOWED = ProductCheck(exists=True, active=True, supplier_allowed=True)
NOT_SUPPLIER = ProductCheck(exists=True, active=True, supplier_allowed=False)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def client(stack, loop_thread):
    """A catalog client on the stack's catalog (its channel lives on the servers' loop)."""
    clock = Clock()

    async def make():
        return CatalogClient(stack.address("catalog"), Telemetry.disabled("ingest"), clock=clock)

    catalog = loop_thread.run(make())
    yield catalog, clock, loop_thread.run
    loop_thread.run(catalog.close())


def _set_suppliers(stack, product_id: str, suppliers: list[str], name: str | None = None) -> None:
    admin = bearer(stack.tokens.admin("catalog-admin"))
    product = stack.catalog.GetProduct(catalog_pb2.GetProductRequest(id=product_id), metadata=admin)
    product.ClearField("update_time")
    del product.supplier_ids[:]
    product.supplier_ids.extend(suppliers)
    if name is not None:
        product.name = name
    stack.catalog.UpsertProduct(catalog_pb2.UpsertProductRequest(product=product), metadata=admin)


def test_a_refusal_is_kept_briefly_and_an_allowance_longer(stack, client):
    catalog, clock, run = client
    token = stack.tokens.supplier("VLAIO")

    def check():
        return run(catalog.check_product("2031", "VLAIO", token))

    assert check() == NOT_SUPPLIER  # 2031 is OMGEVING's in the demo catalog
    _set_suppliers(stack, "2031", ["OMGEVING", "VLAIO"])
    clock.now += REFUSAL_TTL_SECONDS - 0.1
    assert check() == NOT_SUPPLIER  # the refusal is still the cached answer
    clock.now += 0.2
    assert check() == ALLOWED  # asked again: the catalog has changed

    _set_suppliers(stack, "2031", ["OMGEVING"])
    clock.now += CHECK_TTL_SECONDS - 0.1
    assert check() == ALLOWED  # an allowance is kept longer
    clock.now += 0.2
    assert check() == NOT_SUPPLIER


def test_names_are_kept_for_their_ttl_and_unknown_products_are_left_out(stack, client):
    catalog, clock, run = client
    token = stack.tokens.supplier("VLAIO")

    def names():
        return run(catalog.product_names({"1502", "9999"}, token))

    before = names()
    assert set(before) == {"1502"}
    _set_suppliers(stack, "1502", ["VLAIO"], name="Renamed product")
    clock.now += NAME_TTL_SECONDS - 0.1
    assert names() == before
    clock.now += 0.2
    assert names() == {"1502": "Renamed product"}
