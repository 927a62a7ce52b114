"""Alembic environment: the URL comes from the caller (db.migrate), never from a file."""

from alembic import context

from db.engine import get_engine

config = context.config


def run() -> None:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    with get_engine(url).connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run()
