"""Shared fixtures: every test runs against the real PostgreSQL, in databases of its own.

A session-wide template database is migrated once with the real migrator; tests get a fresh copy
(`CREATE DATABASE ... TEMPLATE`), so a test may commit, use several connections or LISTEN freely.
The server is found through TISTATE_TEST_ADMIN_URL (default: postgres on 127.0.0.1:5432).

Two flavors: a test (or module) marked `both_flavors` runs once on the standalone schema and once on
a database made by Airflow 3.3.2's own `airflow db migrate` with tistate installed by
`migrate(flavor="airflow")`. Each test database has the test setup of tests/sql/test_world.sql
(tistate_test.define_dag / create_dag_run) and `search_path = tistate, public`, so tests name
Airflow's tables unqualified and find them in either flavor.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tistate import migrate

ADMIN_URL = os.environ.get(
    "TISTATE_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
_counter = itertools.count()
TEST_WORLD_SQL = Path(__file__).resolve().parent / "sql" / "test_world.sql"
FLAVORS = ("standalone", "airflow")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "both_flavors: run on the standalone schema and on an Airflow 3.3.2 database"
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "flavor" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_flavors"):
        metafunc.parametrize("flavor", FLAVORS, scope="session")


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
        # Tests name Airflow's tables unqualified: tistate's copy or Airflow's, by flavor.
        admin.execute(f'ALTER DATABASE "{name}" SET search_path = tistate, public')
    return dsn_for(name)


def drop_database(name: str) -> None:
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def airflow_db_migrate(dsn: str) -> None:
    """Run Airflow's own `airflow db migrate` on a database (as an Airflow operator would)."""
    params = conninfo_to_dict(dsn)
    url = "postgresql+psycopg2://{user}@{host}:{port}/{dbname}".format(
        user=params.get("user", "postgres"),
        host=params.get("host", "127.0.0.1"),
        port=params.get("port", 5432),
        dbname=params["dbname"],
    )
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "AIRFLOW_HOME": home,
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url,
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        }
        airflow = Path(sys.executable).with_name("airflow")
        result = subprocess.run(
            [str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
        )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture(scope="session")
def flavor() -> str:
    """The flavor of the test's database: standalone unless the test is marked both_flavors."""
    return "standalone"


_templates: dict[str, str] = {}


def template_for(flavor: str) -> str:
    """Name of a database migrated once by the real runner for a flavor (made on first use)."""
    if flavor not in _templates:
        name = f"tistate_tpl_{flavor}_{os.getpid()}_{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
        dsn = create_database(name)
        if flavor == "airflow":
            airflow_db_migrate(dsn)
        migrate.migrate(dsn, flavor=flavor)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(TEST_WORLD_SQL.read_bytes())
        _templates[flavor] = name
    return _templates[flavor]


@pytest.fixture
def template_db(flavor: str) -> str:
    """The template of the test's flavor. Function-scoped on purpose: pytest would hand a cached
    session value of one flavor to a test of the other."""
    return template_for(flavor)


@pytest.fixture(scope="session")
def airflow_template() -> Iterator[str]:
    """A database made by Airflow 3.3.2's own `airflow db migrate`, without tistate (copied)."""
    name = f"tistate_tpl_bare_airflow_{os.getpid()}"
    airflow_db_migrate(create_database(name))
    yield name
    drop_database(name)


@pytest.fixture
def airflow_db_dsn(airflow_template: str) -> Iterator[str]:
    """A fresh copy of the bare Airflow database, for install tests."""
    name = f"tistate_af_{os.getpid()}_{next(_counter)}"
    dsn = create_database(name, template=airflow_template)
    yield dsn
    drop_database(name)


@pytest.fixture(scope="session", autouse=True)
def _drop_templates() -> Iterator[None]:
    yield
    for name in _templates.values():
        drop_database(name)


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
