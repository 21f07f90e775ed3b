"""IPDC feed import into the catalog: from the sample feed's files, over HTTP (following the
relation, loops, missing pages) and through the `dosis` CLI."""

from __future__ import annotations

import copy
import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from sqlmodel import Session

from services.catalog import ipdc_import
from services.catalog import service as catalog_service
from services.cli import main as dosis_cli
from services.store.engine import make_engine
from services.store.products import ProductRow
from tests.catalog_helpers import EXPECTED, EXPECTED_IDS, OMGEVING_IRI, VLAIO_IRI, check_products


@pytest.fixture
def feed_dir(repo_root) -> Path:
    return repo_root / "services" / "catalog" / "demo" / "ipdc-feed"


@pytest.fixture
def mapping_file(repo_root) -> Path:
    return repo_root / "services" / "catalog" / "demo" / "supplier-mapping.json"


@pytest.fixture
def feed_pages(feed_dir) -> list[dict]:
    return [json.loads((feed_dir / f"page-{i}.json").read_text(encoding="utf-8")) for i in (0, 1)]


def rows_of(engine) -> dict[str, ProductRow]:
    if not sa.inspect(engine).has_table("products"):
        return {}
    with Session(engine) as session:
        return {r.id: r for r in session.scalars(sa.select(ProductRow))}


# --- import of the sample feed -------------------------------------------------------------


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


# --- import over HTTP ------------------------------------------------------------------------


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


# --- the CLI ---------------------------------------------------------------------------------


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
