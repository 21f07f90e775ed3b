"""One settings object: read from the environment in services/settings.py alone, written
back for `dosis up`'s children without loss, and the CLI's defaults taken from it."""

from __future__ import annotations

import ast
from dataclasses import fields, replace
from pathlib import Path

from click.testing import CliRunner

from services.cli import main as dosis_cli
from services.settings import DEFAULT_ADDRS, child_env, load_settings, settings_env
from tests.helpers import ENTERPRISE_A

ROOT = Path(__file__).resolve().parent.parent


def every_variable(tmp_path) -> dict[str, str]:
    return {
        "DOSIS_STATE_DIR": str(tmp_path / "state"),
        "DOSIS_DATABASE_URL": "postgresql+psycopg://dosis@db:5432/dosis",
        "DOSIS_CATALOG_DATABASE_URL": "postgresql+psycopg://dosis@db:5432/dosis_catalog",
        "DOSIS_INGEST_ADDR": "0.0.0.0:6001",
        "DOSIS_QUERY_ADDR": "0.0.0.0:6002",
        "DOSIS_CATALOG_ADDR": "catalog:6003",
        "DOSIS_JWKS": "https://login.example/jwks.json",
        "DOSIS_JWT_ISSUER": "https://login.example",
        "DOSIS_JWT_AUDIENCE": "dosis-prod",
        "DOSIS_CATALOG_TOKEN": "catalog-token",
        "DOSIS_SEED_DEMO": "1",
        "DOSIS_LOG_LEVEL": "DEBUG",
        "DOSIS_LOG_FORMAT": "text",
        "DOSIS_TOKEN": "client-token",
        "DOSIS_AUDIT_DATABASE_URL": "postgresql+psycopg://dosis@db:5432/dosis_audit",
        "DOSIS_AUDIT_RETENTION_DAYS": "400",
        "DOSIS_PURGE_INTERVAL": "600",
        "DOSIS_INGEST_RATE": "500",
        "DOSIS_INGEST_BURST": "50",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    }


def test_every_variable_round_trips(tmp_path):
    env = every_variable(tmp_path)
    settings = load_settings(env)
    assert settings_env(settings) == env  # each variable is read, and written back as it was
    assert load_settings(settings_env(settings)) == settings
    # Every field is set by some variable: none keeps its default here.
    defaults = load_settings({"DOSIS_STATE_DIR": env["DOSIS_STATE_DIR"]})
    assert [f.name for f in fields(settings) if getattr(settings, f.name) == getattr(defaults, f.name)] == [
        "state_dir"
    ]
    assert settings.otel == {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_TRACES_SAMPLER_ARG": "0.1"}


def test_the_defaults_round_trip(tmp_path):
    settings = load_settings({"DOSIS_STATE_DIR": str(tmp_path)})
    assert settings.ingest_addr == DEFAULT_ADDRS["ingest"] and settings.database_url.startswith("sqlite:///")
    assert load_settings(settings_env(settings)) == settings
    changed = replace(settings, catalog_token="minted", log_format="text", otel={"OTEL_SDK_DISABLED": "true"})
    assert load_settings(settings_env(changed)) == changed


def test_a_child_gets_the_settings_and_nothing_stale_of_the_parent(tmp_path, monkeypatch):
    monkeypatch.setenv("DOSIS_QUERY_ADDR", "127.0.0.1:1")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "stale")
    monkeypatch.setenv("PATH_FOR_THE_CHILD", "kept")
    settings = replace(load_settings({"DOSIS_STATE_DIR": str(tmp_path)}), query_addr="127.0.0.1:2")
    env = child_env(settings)
    assert load_settings(env) == settings
    assert env["DOSIS_QUERY_ADDR"] == "127.0.0.1:2" and "OTEL_SERVICE_NAME" not in env
    assert env["PATH_FOR_THE_CHILD"] == "kept"


def _environment_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb"):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.attr}")
        elif isinstance(node, ast.keyword) and node.arg in ("envvar", "auto_envvar_prefix"):
            found.append(f"{path.relative_to(ROOT)}:{node.value.lineno} click {node.arg}")
    return found


def test_only_the_settings_module_reads_the_environment():
    exempt = {ROOT / "services/settings.py"}
    reads = [r for p in sorted((ROOT / "services").rglob("*.py")) if p not in exempt for r in _environment_reads(p)]
    assert reads == []
    assert _environment_reads(ROOT / "services/settings.py")  # the check does see a read


def test_the_client_commands_take_address_and_token_from_the_settings(stack, tmp_path):
    env = {
        "DOSIS_STATE_DIR": str(tmp_path),
        "DOSIS_INGEST_ADDR": stack.address("ingest"),
        "DOSIS_QUERY_ADDR": stack.address("query"),
        "DOSIS_TOKEN": stack.tokens.supplier("VLAIO"),
    }
    push = [
        "push", "--enterprise", ENTERPRISE_A, "--product", "1502", "--dossier", "SET-1", "--phase",
        "BEHANDELING_DOSSIER", "--status", "IN_BEHANDELING", "--public", "--email", "info@vlaio.be",
        "--time", "2024-05-01T10:00:00+00:00",
    ]
    runner = CliRunner()
    result = runner.invoke(dosis_cli, push, env=env)
    assert (result.exit_code, result.stdout.strip()) == (0, "CREATED"), result.output

    listed = runner.invoke(dosis_cli, ["list", "--public", ENTERPRISE_A], env=env)
    assert listed.exit_code == 0 and "#SET-1" in listed.stdout, listed.output

    # The flag still wins over the variable.
    moved = {**env, "DOSIS_INGEST_ADDR": "127.0.0.1:1"}
    again = runner.invoke(dosis_cli, [*push, "--addr", stack.address("ingest")], env=moved)
    assert (again.exit_code, again.stdout.strip()) == (0, "UNCHANGED"), again.output
    unreachable = runner.invoke(dosis_cli, push, env=moved)
    assert unreachable.exit_code == 1 and "UNAVAILABLE" in unreachable.stderr


def test_no_token_in_the_settings_means_a_clear_refusal(stack, tmp_path):
    env = {"DOSIS_STATE_DIR": str(tmp_path), "DOSIS_INGEST_ADDR": stack.address("ingest"), "DOSIS_TOKEN": ""}
    result = CliRunner().invoke(dosis_cli, ["push", "--enterprise", ENTERPRISE_A, "--product", "1502", "--dossier",
                                            "SET-2", "--phase", "BEHANDELING_DOSSIER", "--status", "IN_BEHANDELING"],
                                env=env)
    assert result.exit_code == 1 and "no token: set DOSIS_TOKEN" in result.stderr
