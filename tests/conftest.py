"""Fixtures: real databases (SQLite and PostgreSQL), real gRPC servers on port 0, real JWTs.

Every test that takes `stack` runs once per backend. PostgreSQL tests skip when no server
answers, unless DOSIS_REQUIRE_POSTGRES=1 (set by .ci/run), where they fail instead.
"""

from __future__ import annotations

import asyncio
import os
import threading
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import grpc
import psycopg
import pytest
import sqlalchemy as sa

from dosis.v1 import catalog_pb2_grpc, ingest_pb2_grpc, query_pb2_grpc
from services.catalog import service as catalog_service
from services.common.auth import ensure_dev_keys, mint_dev_token
from services.settings import Settings, load_settings
from services.store.engine import make_engine, migrate
from services.common.server import RunningServer, build_server
from services.ingest import service as ingest_service
from services.query import service as query_service
from services.runner import verifier_for
from tests.helpers import bearer

POSTGRES_ADMIN_URL = os.environ.get("DOSIS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("DOSIS_REQUIRE_POSTGRES") == "1"


# --- databases --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_database():
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL is required (DOSIS_REQUIRE_POSTGRES=1) but unreachable: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    name = f"dosis_test_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    base = sa.engine.make_url(POSTGRES_ADMIN_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    yield base.set(database=name).render_as_string(hide_password=False)
    admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    admin.close()


@dataclass
class Stores:
    backend: str
    dossiers: sa.Engine
    catalog: sa.Engine

    def reset(self) -> None:
        with self.dossiers.begin() as c:
            c.execute(sa.text("DELETE FROM dossiers"))
        with self.catalog.begin() as c:
            c.execute(sa.text("DELETE FROM products"))


_stores: dict[str, Stores] = {}


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def stores(request, tmp_path_factory) -> Stores:
    """Both stores, migrated once per backend and emptied before each test; demo catalog seeded."""
    backend = request.param
    if backend not in _stores:
        if backend == "sqlite":
            folder = tmp_path_factory.mktemp("sqlite")
            dossiers = make_engine(f"sqlite:///{folder / 'dossiers.db'}")
            catalog = make_engine(f"sqlite:///{folder / 'catalog.db'}")
        else:
            # One PostgreSQL database for both stores: also proves they can share one.
            url = request.getfixturevalue("postgres_database")
            dossiers = catalog = make_engine(url)
        migrate(dossiers, "store")
        migrate(catalog, "catalog")
        migrate(dossiers, "audit")  # the audit trail beside the dossiers, as by default
        _stores[backend] = Stores(backend, dossiers, catalog)
    stores = _stores[backend]
    stores.reset()
    catalog_service.seed_demo_if_empty(stores.catalog)
    return stores


def pytest_sessionfinish(session, exitstatus):
    for stores in _stores.values():
        stores.dossiers.dispose()
        stores.catalog.dispose()


# --- identity ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def settings(tmp_path_factory) -> Settings:
    state = tmp_path_factory.mktemp("state")
    ensure_dev_keys(state)
    return load_settings({"DOSIS_STATE_DIR": str(state)})


class Tokens:
    def __init__(self, settings: Settings):
        self.settings = settings

    def supplier(self, supplier_id: str = "VLAIO", **claims) -> str:
        return mint_dev_token(self.settings, {"sub": f"s-{supplier_id}", "dosis_supplier": supplier_id, **claims})

    def person(self, enterprise: str, *roles: str, **claims) -> str:
        return mint_dev_token(
            self.settings, {"sub": "person-1", "dosis_enterprise": enterprise, "dosis_roles": list(roles), **claims}
        )

    def admin(self, *roles: str) -> str:
        return mint_dev_token(self.settings, {"sub": "operator", "dosis_admin_roles": list(roles)})


@pytest.fixture(scope="session")
def tokens(settings) -> Tokens:
    return Tokens(settings)


# --- servers ----------------------------------------------------------------------------


class _LoopThread:
    """An asyncio loop in a thread: the grpc.aio servers live there, the tests call in."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


@pytest.fixture(scope="session")
def loop_thread():
    lt = _LoopThread()
    yield lt
    lt.loop.call_soon_threadsafe(lt.loop.stop)


@dataclass
class Stack:
    settings: Settings
    servers: dict[str, RunningServer]
    channels: dict[str, grpc.Channel]
    stores: Stores
    tokens: Tokens

    @property
    def ingest(self) -> ingest_pb2_grpc.IngestServiceStub:
        return ingest_pb2_grpc.IngestServiceStub(self.channels["ingest"])

    @property
    def query(self) -> query_pb2_grpc.QueryServiceStub:
        return query_pb2_grpc.QueryServiceStub(self.channels["query"])

    @property
    def catalog(self) -> catalog_pb2_grpc.CatalogServiceStub:
        return catalog_pb2_grpc.CatalogServiceStub(self.channels["catalog"])

    def address(self, name: str) -> str:
        return f"127.0.0.1:{self.servers[name].port}"

    def as_supplier(self, supplier_id: str = "VLAIO"):
        return bearer(self.tokens.supplier(supplier_id))

    def as_person(self, enterprise: str, *roles: str):
        return bearer(self.tokens.person(enterprise, *roles))


async def start_stack(settings: Settings, stores: Stores) -> dict[str, RunningServer]:
    verifier = verifier_for(settings)
    servers = {}
    servers["catalog"] = await build_server(
        catalog_service.create(settings, engine=stores.catalog, audit_engine=stores.dossiers), verifier, "127.0.0.1:0"
    )
    wired = replace(settings, catalog_addr=f"127.0.0.1:{servers['catalog'].port}")
    for name, factory in (("ingest", ingest_service.create), ("query", query_service.create)):
        servers[name] = await build_server(
            factory(wired, engine=stores.dossiers, audit_engine=stores.dossiers), verifier, "127.0.0.1:0"
        )
    return servers


@pytest.fixture
def stack(stores, settings, tokens, loop_thread):
    """All three services on port 0 over the test's stores, with fresh caches; sync channels."""
    servers = loop_thread.run(start_stack(settings, stores))
    channels = {name: grpc.insecure_channel(f"127.0.0.1:{s.port}") for name, s in servers.items()}
    yield Stack(settings, servers, channels, stores, tokens)
    for channel in channels.values():
        channel.close()
    for server in servers.values():
        loop_thread.run(server.stop(grace=0.5))


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
