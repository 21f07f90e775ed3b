"""compose.yaml and the Dockerfile are wired to what the code reads.

This machine has no container runtime, so the stack is not started here; what can drift
unnoticed is checked instead: every DOSIS_* variable is one the services read, every
command is a `dosis` command, every host named is a service of the file, the OTLP endpoint
is the trace UI's collector port, the stores are migrated before any service starts, and the
Dockerfile copies paths that exist.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
import yaml

from services.cli import main as cli
from services.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
DOSIS = {name: spec for name, spec in SERVICES.items() if spec.get("build") == "."}


def test_the_compose_file_runs_the_three_services_a_store_and_a_trace_ui():
    assert {"ingest", "query", "catalog", "keys", "migrate"} <= set(DOSIS)
    assert SERVICES["postgres"]["image"].startswith("postgres:")
    assert SERVICES["jaeger"]["image"].startswith("jaegertracing/")
    assert "16686:16686" in SERVICES["jaeger"]["ports"]  # the trace UI


@pytest.mark.parametrize("name", ["ingest", "query", "catalog", "keys", "migrate"])
def test_each_command_is_a_dosis_command(name):
    args = DOSIS[name]["command"]
    with click.Context(cli) as context:
        command = cli.get_command(context, args[0])
        assert command is not None, args
        command.make_context(args[0], list(args[1:]), parent=context)  # raises on a bad argument


@pytest.mark.parametrize("name", ["ingest", "query", "catalog", "migrate"])
def test_every_variable_is_read_and_every_host_is_a_service(name):
    env = {key: str(value) for key, value in DOSIS[name]["environment"].items()}
    settings = load_settings(env)
    read = {field: getattr(settings, field) for field in settings.__dataclass_fields__}
    for key, value in env.items():
        if not key.startswith("DOSIS_"):
            continue
        # Read: the setting changes with the variable.
        changed = {f: v for f, v in read.items() if v != getattr(load_settings({**env, key: value + "x"}), f)}
        assert changed, f"{key} is read by nothing"
    for url in (settings.database_url, settings.catalog_database_url, env["OTEL_EXPORTER_OTLP_ENDPOINT"]):
        assert urlsplit(url).hostname in SERVICES, url
    for addr in (settings.catalog_addr,):
        host = addr.rsplit(":", 1)[0]
        assert host in SERVICES or host == "0.0.0.0", addr
    # Spans and metrics go to the collector's OTLP/gRPC port.
    assert urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"]).port == 4317
    # The catalog's own database is the one the PostgreSQL init script creates.
    init = (ROOT / "deploy/postgres-init.sql").read_text()
    assert f"CREATE DATABASE {urlsplit(settings.catalog_database_url).path.lstrip('/')}" in init


def test_the_stores_are_migrated_once_before_any_service_starts():
    # The services do not migrate (only `dosis up` and `dosis migrate` do): compose runs the
    # one-shot `dosis migrate` on the services' own stores once PostgreSQL answers.
    migrate = DOSIS["migrate"]
    assert migrate["command"][0] == "migrate"
    assert migrate["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert "restart" not in migrate and "ports" not in migrate
    migrated = load_settings({k: str(v) for k, v in migrate["environment"].items()})
    for name in ("ingest", "query", "catalog"):
        assert DOSIS[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}, name
        settings = load_settings({k: str(v) for k, v in DOSIS[name]["environment"].items()})
        for url, owner_url in ((settings.database_url, migrated.database_url),
                               (settings.catalog_database_url, migrated.catalog_database_url)):
            # The same database, migrated by its owner, used by the services' own role.
            service, owner = urlsplit(url), urlsplit(owner_url)
            assert (service.hostname, service.path) == (owner.hostname, owner.path), name
            assert owner.username == SERVICES["postgres"]["environment"]["POSTGRES_USER"]
            assert service.username == migrate["command"][migrate["command"].index("--grant-to") + 1], name
    assert [name for name, spec in DOSIS.items() if spec["command"][0] == "migrate"] == ["migrate"]
    init = (ROOT / "deploy/postgres-init.sql").read_text()
    assert f"CREATE ROLE {urlsplit(load_settings(_env('ingest')).database_url).username} LOGIN" in init


def _env(name: str) -> dict[str, str]:
    return {k: str(v) for k, v in DOSIS[name]["environment"].items()}


def test_the_dockerfile_copies_what_exists():
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            *sources, _ = line.split()[1:]
            for source in sources:
                assert (ROOT / source).exists(), source
    mounted = [v.split(":")[0] for v in SERVICES["postgres"]["volumes"] if v.startswith("./")]
    assert mounted and all((ROOT / path).exists() for path in mounted)
    assert re.search(r'^ENTRYPOINT \["dosis"\]$', (ROOT / "Dockerfile").read_text(), re.M)
