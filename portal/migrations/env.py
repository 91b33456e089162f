"""Alembic environment: the URL comes from the caller (portal.db.alembic_config), the models from portal."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from portal.db import import_models, make_nullpool_engine

import_models()
target_metadata = SQLModel.metadata


def run_migrations() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    assert url is not None  # set by portal.db.alembic_config, never from user input
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_nullpool_engine(url)
    with engine.connect() as connection:
        # Batch mode lets later migrations alter SQLite tables (which cannot ALTER most things in place).
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run_migrations()
