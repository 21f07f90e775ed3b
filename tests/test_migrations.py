"""Alembic migrations produce exactly the schema the models describe, on both databases."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.store.products import ProductRow
from services.store.engine import migrate
from services.store.models import Dossier


@pytest.mark.parametrize("model", [Dossier, ProductRow], ids=["dossiers", "products"])
def test_migrated_schema_matches_models(stores, model):
    metadata = sa.MetaData()
    model.__table__.to_metadata(metadata)
    engine = stores.dossiers if model is Dossier else stores.catalog
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "compare_type": True,
                # Only this model's table: the stores may share a database, and hold version tables.
                "include_name": lambda name, type_, parent: type_ != "table" or name in metadata.tables,
            },
        )
        assert compare_metadata(context, metadata) == []


@pytest.mark.parametrize("store", ["store", "catalog"])
def test_migrating_again_is_harmless(stores, store):
    engine = stores.dossiers if store == "store" else stores.catalog
    migrate(engine, store)
    migrate(engine, store)
    with engine.connect() as connection:
        version = connection.execute(sa.text(f"SELECT version_num FROM alembic_version_{store}")).scalar_one()
    assert version == "0001"
