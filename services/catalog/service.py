"""Wiring of the catalog service: its store, its servicer, demo seeding."""

from __future__ import annotations

from pathlib import Path

from dosis.v1 import catalog_pb2_grpc
from services.catalog import ipdc_import
from services.catalog.servicer import POLICIES, CatalogServicer
from services.common.server import Service
from services.common.wiring import wire_service
from services.settings import Settings
from services.store.products import CatalogStore
from services.telemetry import Telemetry

DEMO_DIR = Path(__file__).resolve().parent / "demo"
DEMO_FEED = DEMO_DIR / "ipdc-feed"  # the sample feed of shared/data/ipdc-ldes
DEMO_MAPPING = DEMO_DIR / "supplier-mapping.json"


def import_feed(engine, start: str, mapping_path: str | None) -> int:
    """Store the newest snapshot of every product of an IPDC feed; returns how many."""
    products = ipdc_import.products_from_feed(start, ipdc_import.load_mapping(mapping_path))
    CatalogStore(engine).upsert_all(products)
    return len(products)


def seed_demo_if_empty(engine) -> int:
    if CatalogStore(engine).count():
        return 0
    return import_feed(engine, str(DEMO_FEED), str(DEMO_MAPPING))


def create(settings: Settings, engine=None, telemetry: Telemetry | None = None, audit_engine=None) -> Service:
    def make_servicer(engine, telemetry, audit) -> CatalogServicer:
        if settings.seed_demo:
            seed_demo_if_empty(engine)
        return CatalogServicer(CatalogStore(engine, audit))

    return wire_service(
        "catalog", settings, engine, telemetry, make_servicer,
        catalog_pb2_grpc.add_CatalogServiceServicer_to_server, POLICIES, audit_engine,
    )
