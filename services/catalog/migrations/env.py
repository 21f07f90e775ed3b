"""Alembic environment: runs on the connection that services.common.db.migrate hands over."""

from alembic import context

config = context.config
context.configure(
    connection=config.attributes["connection"],
    version_table=config.get_main_option("version_table"),
    render_as_batch=True,  # SQLite alters tables by copy
)
with context.begin_transaction():
    context.run_migrations()
