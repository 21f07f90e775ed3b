"""Wiring of the catalog service: its store, its servicer, demo seeding."""

from __future__ import annotations

from pathlib import Path

from sqlmodel import Session

from dosis.v1 import catalog_pb2_grpc
from services.catalog import ipdc_import, repository
from services.catalog.servicer import POLICIES, CatalogServicer
from services.common.config import Settings
from services.common.db import make_engine, migrate
from services.common.server import SERVICE_NAMES, Service
from services.telemetry import Telemetry

DEMO_DIR = Path(__file__).resolve().parent / "demo"
DEMO_FEED = DEMO_DIR / "ipdc-feed"  # the sample feed of shared/data/ipdc-ldes
DEMO_MAPPING = DEMO_DIR / "supplier-mapping.json"


def import_feed(engine, start: str, mapping_path: str | None) -> int:
    """Store the newest snapshot of every product of an IPDC feed; returns how many."""
    products = ipdc_import.products_from_feed(start, ipdc_import.load_mapping(mapping_path))
    with Session(engine) as session, session.begin():
        for product in products:
            repository.upsert_product(session, product)
    return len(products)


def seed_demo_if_empty(engine) -> int:
    with Session(engine) as session:
        if repository.count_products(session):
            return 0
    return import_feed(engine, str(DEMO_FEED), str(DEMO_MAPPING))


def create(settings: Settings, engine=None, telemetry: Telemetry | None = None) -> Service:
    telemetry = telemetry or Telemetry.disabled("catalog")
    owned = engine is None
    engine = engine or make_engine(settings.catalog_database_url)
    migrate(engine, "catalog")
    telemetry.instrument_engine(engine)
    if settings.seed_demo:
        seed_demo_if_empty(engine)

    async def close():
        if owned:
            engine.dispose()

    return Service(
        full_name=SERVICE_NAMES["catalog"],
        servicer=CatalogServicer(engine),
        register=catalog_pb2_grpc.add_CatalogServiceServicer_to_server,
        policies=POLICIES,
        telemetry=telemetry,
        close=close,
    )
