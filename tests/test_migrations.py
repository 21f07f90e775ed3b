"""Alembic migrations produce exactly the schema the models describe, on both databases."""

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from services.catalog import service as catalog_service
from services.ingest import service as ingest_service
from services.query import service as query_service
from services.store.engine import SchemaNotReady, make_engine, migrate, schema_error
from services.store.models import Dossier
from services.store.products import ProductRow


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


@pytest.mark.parametrize(
    "name, factory", [("ingest", ingest_service.create), ("query", query_service.create), ("catalog", catalog_service.create)]
)
def test_a_service_never_migrates_and_refuses_a_store_without_its_schema(tmp_path, settings, name, factory):
    """Schemas change through `dosis migrate` (or `dosis up`'s preparation) only: a service
    started on an empty database says what to run, and creates nothing."""
    engine = make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(SchemaNotReady, match="run `dosis migrate` first"):
            factory(settings, engine=engine)
        assert sa.inspect(engine).get_table_names() == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("store", ["store", "catalog"])
def test_a_store_at_another_revision_is_named(stores, store):
    engine = stores.dossiers if store == "store" else stores.catalog
    assert schema_error(engine, store) is None
    table = f"alembic_version_{store}"
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(f"UPDATE {table} SET version_num = 'older'"))
        problem = schema_error(engine, store)
        assert problem is not None and "at schema older" in problem and "0001" in problem
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f"UPDATE {table} SET version_num = '0001'"))
