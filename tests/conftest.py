"""Shared fixtures: every test runs against the real PostgreSQL, in databases of its own.

A session-wide template database is migrated once with the real migrator; tests get a fresh copy
(`CREATE DATABASE ... TEMPLATE`), so a test may commit, use several connections or LISTEN freely.
The server is found through TISTATE_TEST_ADMIN_URL (default: postgres on 127.0.0.1:5432).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tistate import migrate

ADMIN_URL = os.environ.get(
    "TISTATE_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
_counter = itertools.count()


def dsn_for(database: str) -> str:
    """The admin connection string pointed at another database."""
    params = conninfo_to_dict(ADMIN_URL)
    params["dbname"] = database
    return make_conninfo(**params)  # type: ignore[arg-type]


def create_database(name: str, template: str | None = None) -> str:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        clause = f' TEMPLATE "{template}"' if template else ""
        admin.execute(f'CREATE DATABASE "{name}"{clause}')
    return dsn_for(name)


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def template_db(worker_id: str) -> Iterator[str]:
    """Name of a database migrated once by the real runner; copied for each test."""
    name = f"tistate_tpl_{os.getpid()}_{worker_id}"
    migrate.migrate(create_database(name))
    yield name
    drop_database(name)


@pytest.fixture(scope="session")
def worker_id() -> str:
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture
def db_name(template_db: str) -> Iterator[str]:
    """A fresh, fully migrated database for one test."""
    name = f"tistate_t_{os.getpid()}_{next(_counter)}"
    create_database(name, template=template_db)
    yield name
    drop_database(name)


@pytest.fixture
def db_dsn(db_name: str) -> str:
    return dsn_for(db_name)


@pytest.fixture
def empty_db_dsn() -> Iterator[str]:
    """A fresh database with nothing migrated, for migrator tests."""
    name = f"tistate_e_{os.getpid()}_{next(_counter)}"
    dsn = create_database(name)
    yield dsn
    drop_database(name)


@pytest.fixture
def conn(db_dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the test's own database."""
    with psycopg.connect(db_dsn, autocommit=True) as connection:
        yield connection
