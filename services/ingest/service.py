"""Wiring of the ingest service: the dossier store (write side) and the catalog client."""

from __future__ import annotations

from dosis.v1 import ingest_pb2_grpc
from services.common.config import Settings
from services.common.dossier_service import create_dossier_service
from services.common.server import Service
from services.telemetry import Telemetry
from services.ingest.servicer import POLICIES, IngestServicer


def create(settings: Settings, engine=None, telemetry: Telemetry | None = None) -> Service:
    return create_dossier_service(
        "ingest", settings, engine, telemetry, IngestServicer,
        ingest_pb2_grpc.add_IngestServiceServicer_to_server, POLICIES,
    )
