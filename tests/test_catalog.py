"""The catalog: IPDC feed import (files, HTTP, CLI) and CatalogService over real gRPC.

The feed is the repository's own copy of the IPDC sample (services/catalog/demo/ipdc-feed),
so these tests run on a fresh clone. Expected result: data/ipdc-ldes/README.md of the contract.
"""

from __future__ import annotations

import copy
import json
import shutil
import threading
import time
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import Session

from dosis.v1 import catalog_pb2, ingest_pb2, query_pb2
from dosis.v1 import dossier_status_pb2 as pb
from services.catalog import ipdc_import
from services.catalog import service as catalog_service
from services.store.products import ProductRow
from services.cli import main as dosis_cli
from services.store.engine import make_engine
from tests.helpers import ENTERPRISE_A, UTC, bearer, push_request, rpc_error, status

ORG = "https://data.vlaanderen.be/id/organisatie/"
VLAIO_IRI, OMGEVING_IRI, WSE_IRI, SYNTRA_IRI, FIT_IRI = (
    ORG + "OVO000104",
    ORG + "OVO003323",
    ORG + "OVO001833",
    ORG + "OVO000062",
    ORG + "OVO000087",
)
SERVICE = "http://data.lblod.info/id/public-service/"
NO_PRODUCT_ID = "00000000-0000-0000-0000-000000000006"

# id → (name, competent authority IRI, executing authority IRI, mapped supplier id, active)
EXPECTED = {
    NO_PRODUCT_ID: ("Prospectiesteun buitenland", FIT_IRI, FIT_IRI, "FIT", True),
    "1001": ("Stopgezette ecologiepremie", VLAIO_IRI, VLAIO_IRI, "VLAIO", False),
    "1502": ("KMO-portefeuille (opleiding en advies)", VLAIO_IRI, VLAIO_IRI, "VLAIO", True),
    "1519": ("Hinderpremie", VLAIO_IRI, VLAIO_IRI, "VLAIO", True),
    "2031": (
        "Omgevingsvergunning voor ingedeelde inrichtingen",
        OMGEVING_IRI,
        OMGEVING_IRI,
        "OMGEVING",
        True,
    ),
    "3104": ("Aanwervingsincentive langdurig werkzoekenden", WSE_IRI, WSE_IRI, "WSE", True),
    "4410": ("Erkenning als onderneming voor duaal leren", SYNTRA_IRI, SYNTRA_IRI, "SYNTRA", True),
}
EXPECTED_IDS = sorted(EXPECTED)
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture
def feed_dir(repo_root) -> Path:
    return repo_root / "services" / "catalog" / "demo" / "ipdc-feed"


@pytest.fixture
def mapping_file(repo_root) -> Path:
    return repo_root / "services" / "catalog" / "demo" / "supplier-mapping.json"


@pytest.fixture
def feed_pages(feed_dir) -> list[dict]:
    return [json.loads((feed_dir / f"page-{i}.json").read_text(encoding="utf-8")) for i in (0, 1)]


def check_products(products, mapped: bool) -> None:
    """The import result of the sample feed, exactly."""
    assert [p.id for p in products] == EXPECTED_IDS
    for p in products:
        name, authority, executor, supplier, active = EXPECTED[p.id]
        assert p.name == name, p.id
        assert p.competent_authority == authority, p.id
        assert tuple(p.supplier_ids) == ((supplier,) if mapped else (executor,)), p.id
        assert p.active is active, p.id
    by_id = {p.id: p for p in products}
    # The newest snapshot of 1502 wins in every field, and HTML is stripped from the text.
    assert by_id["1502"].description == "Subsidie voor opleiding en advies van kmo's; nieuwe titel."
    assert by_id["1502"].url == SERVICE + "00000000-0000-0000-0000-000000000001"
    # Without productId, the id is the last path segment of isVersionOf.
    assert by_id[NO_PRODUCT_ID].url == SERVICE + NO_PRODUCT_ID


def rows_of(engine) -> dict[str, ProductRow]:
    if not sa.inspect(engine).has_table("products"):
        return {}
    with Session(engine) as session:
        return {r.id: r for r in session.scalars(sa.select(ProductRow))}


# --- 1. import of the sample feed -------------------------------------------------------------


def test_import_with_mapping(feed_dir, mapping_file):
    mapping = ipdc_import.load_mapping(str(mapping_file))
    check_products(ipdc_import.products_from_feed(str(feed_dir), mapping), mapped=True)
    # The first page's file as start gives the same.
    check_products(ipdc_import.products_from_feed(str(feed_dir / "page-0.json"), mapping), mapped=True)


def test_import_without_mapping_keeps_the_iris(feed_dir):
    check_products(ipdc_import.products_from_feed(str(feed_dir)), mapped=False)
    check_products(ipdc_import.products_from_feed(str(feed_dir), {}), mapped=False)


def test_partial_mapping_keeps_unmapped_iris(feed_dir):
    products = {p.id: p for p in ipdc_import.products_from_feed(str(feed_dir), {VLAIO_IRI: "VLAIO"})}
    assert products["1502"].supplier_ids == ("VLAIO",)
    assert products["2031"].supplier_ids == (OMGEVING_IRI,)


def test_newest_snapshot_wins_whatever_the_page_order(tmp_path, feed_pages):
    # Swap the two 1502 snapshots' places: the older one now comes last in the feed.
    pages = copy.deepcopy(feed_pages)
    members = pages[0]["member"]
    newer = members.pop(3)
    older = members.pop(0)
    members.insert(0, newer)
    pages[1]["member"].append(older)
    for i, page in enumerate(pages):
        (tmp_path / f"page-{i}.json").write_text(json.dumps(page), encoding="utf-8")
    products = {p.id: p for p in ipdc_import.products_from_feed(str(tmp_path / "page-0.json"))}
    assert products["1502"].name == "KMO-portefeuille (opleiding en advies)"


def test_import_feed_into_the_store(stores, feed_dir, mapping_file):
    """The database path on both backends: without mapping, then with, then again unchanged."""
    with stores.catalog.begin() as c:
        c.execute(sa.text("DELETE FROM products"))

    assert catalog_service.import_feed(stores.catalog, str(feed_dir), None) == 7
    first = rows_of(stores.catalog)
    assert sorted(first) == EXPECTED_IDS
    assert first["2031"].supplier_ids == [OMGEVING_IRI]
    assert first["1001"].active is False

    time.sleep(0.01)
    assert catalog_service.import_feed(stores.catalog, str(feed_dir), str(mapping_file)) == 7
    second = rows_of(stores.catalog)
    for pid, row in second.items():
        assert row.supplier_ids == [EXPECTED[pid][3]]
        assert row.update_time > first[pid].update_time  # supplier ids changed

    assert catalog_service.import_feed(stores.catalog, str(feed_dir), str(mapping_file)) == 7
    third = rows_of(stores.catalog)
    assert {pid: r.update_time for pid, r in third.items()} == {
        pid: r.update_time for pid, r in second.items()
    }


# --- 2. import over HTTP ------------------------------------------------------------------------


class FeedServer:
    """A local http.server serving feed pages by path; counts requests; refuses after `limit`."""

    def __init__(self, limit: int = 20):
        self.pages: dict[str, dict] = {}
        self.requests: list[str] = []
        self.limit = limit
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                page = server.pages.get(self.path)
                if page is None or len(server.requests) > server.limit:
                    self.send_error(404 if page is None else 500)
                    return
                body = json.dumps(page).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/ld+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


def _point(page: dict, *targets: str) -> dict:
    page = copy.deepcopy(page)
    page["view"]["relation"] = [
        {"node": t, "path": "generatedAtTime", "@type": "GreaterThanOrEqualToRelation"} for t in targets
    ]
    return page


def test_import_over_http_follows_the_relation(feed_pages, mapping_file):
    with FeedServer() as server:
        server.pages["/feed?page=0"] = _point(feed_pages[0], server.url("/feed?page=1"))
        server.pages["/feed?page=1"] = feed_pages[1]
        products = ipdc_import.products_from_feed(
            server.url("/feed?page=0"), ipdc_import.load_mapping(str(mapping_file))
        )
    assert server.requests == ["/feed?page=0", "/feed?page=1"]
    check_products(products, mapped=True)


def test_import_over_http_of_a_looping_feed_terminates(feed_pages):
    with FeedServer() as server:
        server.pages["/p0"] = _point(feed_pages[0], server.url("/p1"))
        server.pages["/p1"] = _point(feed_pages[1], server.url("/p0"), server.url("/p1"))
        products = ipdc_import.products_from_feed(server.url("/p0"))
    assert sorted(server.requests) == ["/p0", "/p1"]  # each page once
    check_products(products, mapped=False)


def test_import_over_http_of_a_missing_page_fails(feed_pages):
    with FeedServer() as server:
        server.pages["/p0"] = _point(feed_pages[0], server.url("/gone"))
        with pytest.raises(OSError):
            ipdc_import.products_from_feed(server.url("/p0"))


def test_local_looping_feed_terminates(tmp_path, feed_pages):
    first_id, second_id = feed_pages[0]["@id"], feed_pages[1]["@id"]
    (tmp_path / "page-0.json").write_text(json.dumps(_point(feed_pages[0], second_id)), encoding="utf-8")
    (tmp_path / "page-1.json").write_text(json.dumps(_point(feed_pages[1], first_id)), encoding="utf-8")
    started = time.monotonic()
    check_products(ipdc_import.products_from_feed(str(tmp_path / "page-0.json")), mapped=False)
    # Given only the folder, a loop has no first page: an error, not an endless read.
    with pytest.raises(ipdc_import.FeedError):
        ipdc_import.products_from_feed(str(tmp_path))
    assert time.monotonic() - started < 10


# --- 3. the CLI ---------------------------------------------------------------------------------


@pytest.fixture
def unmigrated_cli(tmp_path):
    """Runs `dosis …` with both stores in temp SQLite files not migrated yet; (run, catalog URL)."""
    state = tmp_path / "state"
    env = {
        "DOSIS_STATE_DIR": str(state),
        "DOSIS_CATALOG_DATABASE_URL": f"sqlite:///{state / 'catalog.db'}",
        "DOSIS_DATABASE_URL": f"sqlite:///{state / 'dossiers.db'}",
    }
    runner = CliRunner()

    def run(*args):
        return runner.invoke(dosis_cli, list(args), env=env, catch_exceptions=False)

    return run, env["DOSIS_CATALOG_DATABASE_URL"]


@pytest.fixture
def cli(unmigrated_cli):
    """As unmigrated_cli after `dosis migrate`; (run, engine)."""
    run, url = unmigrated_cli
    assert run("migrate").exit_code == 0  # the operator's step before any import
    engine = make_engine(url)
    yield run, engine
    engine.dispose()


def test_cli_import_refuses_an_unmigrated_store_in_one_line(unmigrated_cli, feed_dir):
    run, url = unmigrated_cli
    result = run("catalog", "import", str(feed_dir))
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: the catalog store has no schema yet: run `dosis migrate` first"
    ]
    engine = make_engine(url)
    try:
        assert sa.inspect(engine).get_table_names() == []  # importing did not migrate either
        assert run("migrate").exit_code == 0
        assert run("catalog", "import", str(feed_dir)).exit_code == 0
        assert sorted(rows_of(engine)) == EXPECTED_IDS
    finally:
        engine.dispose()


def test_cli_import_and_reimport(cli, tmp_path, feed_dir, mapping_file):
    run, engine = cli
    feed = tmp_path / "feed"
    shutil.copytree(feed_dir, feed)
    for f in feed.iterdir():
        f.chmod(0o644)

    result = run("catalog", "import", str(feed), "--mapping", str(mapping_file))
    assert result.exit_code == 0, result.output
    assert "imported 7 products" in result.stdout
    first = rows_of(engine)
    assert sorted(first) == EXPECTED_IDS
    assert first["3104"].supplier_ids == ["WSE"] and first["1001"].active is False

    time.sleep(0.01)
    result = run("catalog", "import", str(feed / "page-0.json"), "--mapping", str(mapping_file))
    assert result.exit_code == 0, result.output
    second = rows_of(engine)
    assert {k: r.update_time for k, r in second.items()} == {k: r.update_time for k, r in first.items()}

    # A changed title in the feed moves only that product's update_time.
    page = json.loads((feed / "page-0.json").read_text(encoding="utf-8"))
    page["member"][2]["titel"]["nl"] = "Omgevingsvergunning (nieuw)"
    (feed / "page-0.json").write_text(json.dumps(page), encoding="utf-8")
    time.sleep(0.01)
    result = run("catalog", "import", str(feed), "--mapping", str(mapping_file))
    assert result.exit_code == 0, result.output
    third = rows_of(engine)
    assert third["2031"].name == "Omgevingsvergunning (nieuw)"
    assert third["2031"].update_time > second["2031"].update_time
    assert {k: r.update_time for k, r in third.items() if k != "2031"} == {
        k: r.update_time for k, r in second.items() if k != "2031"
    }


def test_cli_import_without_mapping(cli, feed_dir):
    run, engine = cli
    result = run("catalog", "import", str(feed_dir))
    assert result.exit_code == 0, result.output
    assert rows_of(engine)["2031"].supplier_ids == [OMGEVING_IRI]


def test_cli_broken_feed_path_fails_clearly(cli, tmp_path):
    run, engine = cli
    missing = tmp_path / "no-such-feed"
    result = run("catalog", "import", str(missing))
    assert result.exit_code != 0
    assert "import failed" in result.stderr and str(missing) in result.stderr
    assert rows_of(engine) == {}

    bad = tmp_path / "bad-feed"
    bad.mkdir()
    (bad / "page-0.json").write_text("{ not json", encoding="utf-8")
    result = run("catalog", "import", str(bad / "page-0.json"))
    assert result.exit_code != 0
    assert "import failed" in result.stderr
    assert rows_of(engine) == {}

    result = run("catalog", "import", str(tmp_path), "--mapping", str(tmp_path / "no-mapping.json"))
    assert result.exit_code != 0
    assert rows_of(engine) == {}


def test_cli_missing_page_file_in_a_feed_folder_fails(cli, feed_dir):
    """A mistyped first-page file must not silently import the pages next to it."""
    run, engine = cli
    typo = feed_dir / "page-O.json"  # letter O, not zero: does not exist
    assert not typo.exists()
    result = run("catalog", "import", str(typo))
    assert result.exit_code != 0, f"imported from a file that does not exist: {result.output!r}"
    assert "import failed" in result.stderr
    assert rows_of(engine) == {}


# --- 4. products over gRPC ----------------------------------------------------------------------


def test_get_product(stack):
    reader = stack.as_person(ENTERPRISE_A)
    product = stack.catalog.GetProduct(catalog_pb2.GetProductRequest(id="1502"), metadata=reader)
    assert product.name == "KMO-portefeuille (opleiding en advies)"
    assert list(product.supplier_ids) == ["VLAIO"]
    assert product.competent_authority == VLAIO_IRI
    assert product.active and product.HasField("update_time")
    assert stack.catalog.GetProduct(catalog_pb2.GetProductRequest(id="1001"), metadata=reader).active is False

    err = rpc_error(stack.catalog.GetProduct, catalog_pb2.GetProductRequest(id="9999"), metadata=reader)
    assert err.code == grpc.StatusCode.NOT_FOUND and err.reason == "PRODUCT_NOT_FOUND"
    err = rpc_error(stack.catalog.GetProduct, catalog_pb2.GetProductRequest(id="1502"))
    assert err.code == grpc.StatusCode.UNAUTHENTICATED


def test_list_products_pages(stack):
    reader = stack.as_supplier("WSE")
    seen, token, pages = [], "", []
    while True:
        reply = stack.catalog.ListProducts(
            catalog_pb2.ListProductsRequest(page_size=3, page_token=token), metadata=reader
        )
        pages.append(len(reply.products))
        seen.extend(reply.products)
        token = reply.next_page_token
        if not token:
            break
    assert pages == [3, 3, 1]
    check_products(seen, mapped=True)  # id order, each once, the demo feed with its mapping

    everything = stack.catalog.ListProducts(catalog_pb2.ListProductsRequest(), metadata=reader)
    assert [p.id for p in everything.products] == EXPECTED_IDS and everything.next_page_token == ""

    err = rpc_error(
        stack.catalog.ListProducts, catalog_pb2.ListProductsRequest(page_size=-3), metadata=reader
    )
    assert err.code == INVALID
    err = rpc_error(
        stack.catalog.ListProducts, catalog_pb2.ListProductsRequest(page_token="garbage"), metadata=reader
    )
    assert err.code == INVALID and err.reason == "INVALID_PAGE_TOKEN"
    assert rpc_error(stack.catalog.ListProducts, catalog_pb2.ListProductsRequest()).code == (
        grpc.StatusCode.UNAUTHENTICATED
    )


def test_list_products_tampered_page_token_is_invalid_argument(stack):
    """Tokens are base64 JSON (readable by design): an edited one must be INVALID_ARGUMENT, not INTERNAL."""
    import base64

    reader = stack.as_supplier("WSE")
    token = stack.catalog.ListProducts(
        catalog_pb2.ListProductsRequest(page_size=2), metadata=reader
    ).next_page_token
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    data["p"] = {"position": data["p"]["id"]}  # the envelope stays valid, the position does not
    tampered = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    err = rpc_error(
        stack.catalog.ListProducts,
        catalog_pb2.ListProductsRequest(page_size=2, page_token=tampered),
        metadata=reader,
    )
    assert err.code == INVALID, f"got {err.code.name} {err.reason}"
    assert err.reason == "INVALID_PAGE_TOKEN"


def _admin(stack):
    return bearer(stack.tokens.admin("catalog-admin"))


def test_upsert_product_creates_and_changes(stack):
    admin = _admin(stack)
    new = catalog_pb2.Product(
        id="7777",
        name="Testpremie",
        description="Een premie voor tests.",
        competent_authority=VLAIO_IRI,
        supplier_ids=["WSE", "VLAIO"],
        active=True,
        url="https://example.org/7777",
    )
    created = stack.catalog.UpsertProduct(catalog_pb2.UpsertProductRequest(product=new), metadata=admin)
    assert (created.id, created.name, created.active) == ("7777", "Testpremie", True)
    assert set(created.supplier_ids) == {"WSE", "VLAIO"}
    created_at = created.update_time.ToDatetime(UTC)
    assert abs(created_at - datetime.now(UTC)) < timedelta(minutes=1)

    reader = stack.as_supplier("WSE")
    got = stack.catalog.GetProduct(catalog_pb2.GetProductRequest(id="7777"), metadata=reader)
    assert got.description == "Een premie voor tests." and got.url == "https://example.org/7777"
    assert got.update_time == created.update_time

    time.sleep(0.01)
    same = stack.catalog.UpsertProduct(catalog_pb2.UpsertProductRequest(product=new), metadata=admin)
    assert same.update_time == created.update_time  # nothing changed, nothing moves
    reordered = copy.deepcopy(new)
    del reordered.supplier_ids[:]
    reordered.supplier_ids.extend(["VLAIO", "WSE"])
    assert (
        stack.catalog.UpsertProduct(
            catalog_pb2.UpsertProductRequest(product=reordered), metadata=admin
        ).update_time
        == created.update_time
    )

    changed = copy.deepcopy(new)
    changed.name = "Testpremie 2"
    changed.active = False
    updated = stack.catalog.UpsertProduct(catalog_pb2.UpsertProductRequest(product=changed), metadata=admin)
    assert updated.name == "Testpremie 2" and updated.active is False
    assert updated.update_time.ToDatetime(UTC) > created_at
    check = stack.catalog.CheckProduct(
        catalog_pb2.CheckProductRequest(product_id="7777", supplier_id="WSE"), metadata=reader
    )
    assert (check.exists, check.active, check.supplier_allowed) == (True, False, True)

    listed = stack.catalog.ListProducts(catalog_pb2.ListProductsRequest(page_size=100), metadata=reader)
    assert [p.id for p in listed.products] == sorted(EXPECTED_IDS + ["7777"])


def test_upsert_product_needs_catalog_admin(stack):
    product = catalog_pb2.Product(id="7778", name="Niet toegelaten", supplier_ids=["VLAIO"], active=True)
    request = catalog_pb2.UpsertProductRequest(product=product)
    for metadata in (
        bearer(stack.tokens.admin("auditor")),
        stack.as_supplier("VLAIO"),
        stack.as_person(ENTERPRISE_A, "catalog-admin"),
    ):
        err = rpc_error(stack.catalog.UpsertProduct, request, metadata=metadata)
        assert err.code == grpc.StatusCode.PERMISSION_DENIED
    assert rpc_error(stack.catalog.UpsertProduct, request).code == grpc.StatusCode.UNAUTHENTICATED
    err = rpc_error(
        stack.catalog.GetProduct,
        catalog_pb2.GetProductRequest(id="7778"),
        metadata=stack.as_supplier("VLAIO"),
    )
    assert err.code == grpc.StatusCode.NOT_FOUND  # nothing was stored


def test_upsert_product_names_every_invalid_field(stack):
    bad = catalog_pb2.Product(
        id="bad id!", name="   ", supplier_ids=["VLAIO", "", "X" * 65], url="https://x.example/" + "a" * 2048
    )
    err = rpc_error(
        stack.catalog.UpsertProduct, catalog_pb2.UpsertProductRequest(product=bad), metadata=_admin(stack)
    )
    assert err.code == INVALID
    assert err.fields() == {
        "product.id",
        "product.name",
        "product.supplier_ids[1]",
        "product.supplier_ids[2]",
        "product.url",
    }
    err = rpc_error(stack.catalog.UpsertProduct, catalog_pb2.UpsertProductRequest(), metadata=_admin(stack))
    assert err.code == INVALID and {"product.id", "product.name"} <= err.fields()
    # A valid id with a bad name stores nothing.
    err = rpc_error(
        stack.catalog.UpsertProduct,
        catalog_pb2.UpsertProductRequest(product=catalog_pb2.Product(id="1502", name="")),
        metadata=_admin(stack),
    )
    assert err.fields() == {"product.name"}
    kmo = stack.catalog.GetProduct(catalog_pb2.GetProductRequest(id="1502"), metadata=_admin(stack))
    assert kmo.name == "KMO-portefeuille (opleiding en advies)"


def test_added_supplier_may_push_right_away(stack):
    admin = _admin(stack)
    vlaio = stack.as_supplier("VLAIO")
    before = stack.catalog.CheckProduct(
        catalog_pb2.CheckProductRequest(product_id="2031", supplier_id="VLAIO"), metadata=vlaio
    )
    assert (before.exists, before.active, before.supplier_allowed) == (True, True, False)

    product = stack.catalog.GetProduct(catalog_pb2.GetProductRequest(id="2031"), metadata=admin)
    product.supplier_ids.append("VLAIO")
    product.ClearField("update_time")
    updated = stack.catalog.UpsertProduct(catalog_pb2.UpsertProductRequest(product=product), metadata=admin)
    assert set(updated.supplier_ids) == {"OMGEVING", "VLAIO"}
    assert updated.name == "Omgevingsvergunning voor ingedeelde inrichtingen"

    # The ingest cache has not seen 2031 yet: the push is checked against the new catalog.
    reply = stack.ingest.PushStatus(
        push_request(status(product="2031", dossier="OMG-VLAIO-1")), metadata=vlaio
    )
    assert reply.outcome == ingest_pb2.PUSH_OUTCOME_CREATED
    listed = stack.query.ListDossiers(
        query_pb2.ListDossiersRequest(enterprise_number=ENTERPRISE_A),
        metadata=stack.as_person(ENTERPRISE_A, "Bedrijfsleider"),
    )
    assert [(d.product_id, d.supplier_id, d.product_name) for d in listed.dossiers] == [
        ("2031", "VLAIO", "Omgevingsvergunning voor ingedeelde inrichtingen")
    ]
    # OMGEVING still may push too.
    omgeving = stack.ingest.PushStatus(
        push_request(status(product="2031", dossier="OMG-1")), metadata=stack.as_supplier("OMGEVING")
    )
    assert omgeving.outcome == ingest_pb2.PUSH_OUTCOME_CREATED


# --- 5. CheckProduct ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "product_id, supplier_id, expected",
    [
        ("1502", "VLAIO", (True, True, True)),
        ("1502", "FIT", (True, True, False)),
        ("1001", "VLAIO", (True, False, True)),
        (NO_PRODUCT_ID, "FIT", (True, True, True)),
        ("9999", "VLAIO", (False, False, False)),
        ("1502", "vlaio", (True, True, False)),
    ],
)
def test_check_product(stack, product_id, supplier_id, expected):
    reply = stack.catalog.CheckProduct(
        catalog_pb2.CheckProductRequest(product_id=product_id, supplier_id=supplier_id),
        metadata=stack.as_supplier(supplier_id),
    )
    assert (reply.exists, reply.active, reply.supplier_allowed) == expected


def test_check_product_needs_a_token(stack):
    err = rpc_error(
        stack.catalog.CheckProduct, catalog_pb2.CheckProductRequest(product_id="1502", supplier_id="VLAIO")
    )
    assert err.code == grpc.StatusCode.UNAUTHENTICATED


# --- 6. ListStatusCodes -------------------------------------------------------------------------


def test_list_status_codes(stack):
    for metadata in (
        stack.as_supplier("VLAIO"),
        stack.as_person(ENTERPRISE_A),
        bearer(stack.tokens.admin("auditor")),
    ):
        reply = stack.catalog.ListStatusCodes(catalog_pb2.ListStatusCodesRequest(), metadata=metadata)
        phases = {p.phase: p.label for p in reply.phases}
        codes = {s.status: s.label for s in reply.status_codes}
        assert len(reply.phases) == len(phases) == 7
        assert len(reply.status_codes) == len(codes) == 23
        assert set(phases) == {v for v in pb.StatusPhase.values() if v != pb.STATUS_PHASE_UNSPECIFIED}
        assert set(codes) == {v for v in pb.StatusCode.values() if v != pb.STATUS_CODE_UNSPECIFIED}
        assert all(label.strip() for label in [*phases.values(), *codes.values()])
        assert "UNSPECIFIED" not in " ".join([*phases.values(), *codes.values()]).upper()
        assert codes[pb.STATUS_CODE_IN_BEHANDELING] == "in behandeling"
        assert codes[pb.STATUS_CODE_GEINITIEERD] == "geïnitieerd"
        assert codes[pb.STATUS_CODE_KLAAR_VOOR_BETALING] == "klaar voor betaling"
        assert codes[pb.STATUS_CODE_ERKEND_VERGUND] == "erkend/vergund"
        assert phases[pb.STATUS_PHASE_SAMENSTELLING_AANVRAAG] == "samenstelling aanvraag"
        assert phases[pb.STATUS_PHASE_BESLISSING_DEFINITIEF] == "beslissing definitief"

    err = rpc_error(stack.catalog.ListStatusCodes, catalog_pb2.ListStatusCodesRequest())
    assert err.code == grpc.StatusCode.UNAUTHENTICATED
    err = rpc_error(
        stack.catalog.ListStatusCodes, catalog_pb2.ListStatusCodesRequest(), metadata=bearer("x.y.z")
    )
    assert err.code == grpc.StatusCode.UNAUTHENTICATED
