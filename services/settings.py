"""The configuration of every `dosis` command and service, from the environment.

This is the one module that reads the environment (the variables in the README's
configuration table, plus the standard OTEL_* ones handed to telemetry as they are) and the
one that turns settings back into an environment, for the children `dosis up` starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEV_JWKS_FILE = "dev-jwks.json"
DEV_KEY_FILE = "dev-signing-key.pem"

DEFAULT_ADDRS = {
    "ingest": "127.0.0.1:50051",
    "query": "127.0.0.1:50052",
    "catalog": "127.0.0.1:50053",
}

_TRUE = ("1", "true", "yes")
# Audit events younger than this cannot be deleted (the database refuses; see
# services/store/audit_migrations), so retention may not be shorter.
MIN_AUDIT_RETENTION_DAYS = 30
DEFAULT_AUDIT_RETENTION_DAYS = 396  # 13 months


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    database_url: str
    catalog_database_url: str
    ingest_addr: str
    query_addr: str
    catalog_addr: str
    jwks: str
    jwt_issuer: str
    jwt_audience: str
    # Token the query service shows the catalog when its own caller sent none
    # (ListPublicDossiers), to read product names. `dosis up` mints one for development.
    catalog_token: str = ""
    # Seed the demo products into an empty catalog at start (compose; `dosis up` always does).
    seed_demo: bool = False
    log_level: str = "INFO"
    # "" leaves the choice to the command: JSON for `dosis serve`, text for `dosis up`'s children.
    log_format: str = ""
    # The client commands' bearer token (DOSIS_TOKEN); the services never use it.
    token: str = ""
    # Seconds between two purges of expired dossiers (visible_until passed) in the ingest
    # service; 0 (or less) disables them (`dosis purge` still runs one by hand).
    purge_interval: float = 3600.0
    # Per-supplier ingest rate limit (services.ingest.rate_limit): statuses a second and the
    # bucket's size. A rate of 0 is no limit. The defaults are far above what one supplier
    # sends (the benchmarks push 2,000-5,000 a second): set them for a shared production.
    ingest_rate: int = 20_000
    ingest_burst: int = 40_000
    # The OTEL_* variables, for telemetry (and for the SDK exporters in the children).
    otel: Mapping[str, str] = field(default_factory=dict)
    # The audit trail's store (every service writes its calls' events there; query reads
    # them): the dossier store's database unless configured otherwise.
    audit_database_url: str = ""
    audit_retention_days: int = DEFAULT_AUDIT_RETENTION_DAYS

    @property
    def uses_dev_keys(self) -> bool:
        return self.jwks == str(self.state_dir / DEV_JWKS_FILE)

    @property
    def json_logs(self) -> bool:
        return self.log_format != "text"

    def addr(self, service: str) -> str:
        return {"ingest": self.ingest_addr, "query": self.query_addr, "catalog": self.catalog_addr}[service]


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Settings from `env` (default: this process's environment); an empty variable is unset."""
    env = dict(os.environ if env is None else env)
    state_dir = Path(env.get("DOSIS_STATE_DIR") or ".dosis").resolve()
    database_url = env.get("DOSIS_DATABASE_URL") or f"sqlite:///{state_dir / 'dossiers.db'}"
    return Settings(
        state_dir=state_dir,
        database_url=database_url,
        catalog_database_url=env.get("DOSIS_CATALOG_DATABASE_URL") or f"sqlite:///{state_dir / 'catalog.db'}",
        ingest_addr=env.get("DOSIS_INGEST_ADDR") or DEFAULT_ADDRS["ingest"],
        query_addr=env.get("DOSIS_QUERY_ADDR") or DEFAULT_ADDRS["query"],
        catalog_addr=env.get("DOSIS_CATALOG_ADDR") or DEFAULT_ADDRS["catalog"],
        jwks=env.get("DOSIS_JWKS") or str(state_dir / DEV_JWKS_FILE),
        jwt_issuer=env.get("DOSIS_JWT_ISSUER") or "dosis-dev",
        jwt_audience=env.get("DOSIS_JWT_AUDIENCE") or "dosis",
        catalog_token=env.get("DOSIS_CATALOG_TOKEN") or "",
        seed_demo=env.get("DOSIS_SEED_DEMO", "") in _TRUE,
        log_level=env.get("DOSIS_LOG_LEVEL") or "INFO",
        log_format=env.get("DOSIS_LOG_FORMAT") or "",
        token=env.get("DOSIS_TOKEN") or "",
        purge_interval=float(env.get("DOSIS_PURGE_INTERVAL") or 3600),
        ingest_rate=(rate := int(env.get("DOSIS_INGEST_RATE") or 20_000)),
        ingest_burst=int(env.get("DOSIS_INGEST_BURST") or 2 * rate),
        otel={key: value for key, value in env.items() if key.startswith("OTEL_")},
        audit_database_url=env.get("DOSIS_AUDIT_DATABASE_URL") or database_url,
        audit_retention_days=_retention_days(env.get("DOSIS_AUDIT_RETENTION_DAYS")),
    )


def _retention_days(text: str | None) -> int:
    if not text:
        return DEFAULT_AUDIT_RETENTION_DAYS
    try:
        days = int(text)
    except ValueError:
        raise ValueError(f"DOSIS_AUDIT_RETENTION_DAYS must be a whole number of days, not {text!r}") from None
    if days < MIN_AUDIT_RETENTION_DAYS:
        raise ValueError(f"DOSIS_AUDIT_RETENTION_DAYS must be at least {MIN_AUDIT_RETENTION_DAYS} (got {days})")
    return days


def settings_env(settings: Settings) -> dict[str, str]:
    """The variables that load_settings reads back as these settings (all of them, so that
    nothing of the parent's own environment overrides them)."""
    return {
        "DOSIS_STATE_DIR": str(settings.state_dir),
        "DOSIS_DATABASE_URL": settings.database_url,
        "DOSIS_CATALOG_DATABASE_URL": settings.catalog_database_url,
        "DOSIS_INGEST_ADDR": settings.ingest_addr,
        "DOSIS_QUERY_ADDR": settings.query_addr,
        "DOSIS_CATALOG_ADDR": settings.catalog_addr,
        "DOSIS_JWKS": settings.jwks,
        "DOSIS_JWT_ISSUER": settings.jwt_issuer,
        "DOSIS_JWT_AUDIENCE": settings.jwt_audience,
        "DOSIS_CATALOG_TOKEN": settings.catalog_token,
        "DOSIS_SEED_DEMO": "1" if settings.seed_demo else "",
        "DOSIS_LOG_LEVEL": settings.log_level,
        "DOSIS_LOG_FORMAT": settings.log_format,
        "DOSIS_TOKEN": settings.token,
        "DOSIS_AUDIT_DATABASE_URL": settings.audit_database_url,
        "DOSIS_AUDIT_RETENTION_DAYS": str(settings.audit_retention_days),
        "DOSIS_PURGE_INTERVAL": _seconds(settings.purge_interval),
        "DOSIS_INGEST_RATE": str(settings.ingest_rate),
        "DOSIS_INGEST_BURST": str(settings.ingest_burst),
        **settings.otel,
    }


def _seconds(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def child_env(settings: Settings) -> dict[str, str]:
    """A child process's environment: this one's (PATH, …) without its DOSIS_*/OTEL_*
    variables, plus the settings."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("DOSIS_", "OTEL_"))}
    return {**inherited, **settings_env(settings)}
