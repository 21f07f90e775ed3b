"""Configuration from the environment (the variables in the contract), in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

DEV_JWKS_FILE = "dev-jwks.json"
DEV_KEY_FILE = "dev-signing-key.pem"

DEFAULT_ADDRS = {
    "ingest": "127.0.0.1:50051",
    "query": "127.0.0.1:50052",
    "catalog": "127.0.0.1:50053",
}


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

    @property
    def uses_dev_keys(self) -> bool:
        return self.jwks == str(self.state_dir / DEV_JWKS_FILE)

    def addr(self, service: str) -> str:
        return {"ingest": self.ingest_addr, "query": self.query_addr, "catalog": self.catalog_addr}[service]


def load_settings(env: dict[str, str] | None = None) -> Settings:
    env = dict(os.environ if env is None else env)
    state_dir = Path(env.get("DOSIS_STATE_DIR") or ".dosis").resolve()
    return Settings(
        state_dir=state_dir,
        database_url=env.get("DOSIS_DATABASE_URL") or f"sqlite:///{state_dir / 'dossiers.db'}",
        catalog_database_url=env.get("DOSIS_CATALOG_DATABASE_URL") or f"sqlite:///{state_dir / 'catalog.db'}",
        ingest_addr=env.get("DOSIS_INGEST_ADDR") or DEFAULT_ADDRS["ingest"],
        query_addr=env.get("DOSIS_QUERY_ADDR") or DEFAULT_ADDRS["query"],
        catalog_addr=env.get("DOSIS_CATALOG_ADDR") or DEFAULT_ADDRS["catalog"],
        jwks=env.get("DOSIS_JWKS") or str(state_dir / DEV_JWKS_FILE),
        jwt_issuer=env.get("DOSIS_JWT_ISSUER") or "dosis-dev",
        jwt_audience=env.get("DOSIS_JWT_AUDIENCE") or "dosis",
        catalog_token=env.get("DOSIS_CATALOG_TOKEN") or "",
        seed_demo=env.get("DOSIS_SEED_DEMO", "") in ("1", "true", "yes"),
    )
