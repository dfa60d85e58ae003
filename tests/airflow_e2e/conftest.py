"""Fixtures of the Airflow end-to-end tests: a real Airflow 3.3 metadata database (world.py).

- `airflow_world_factory` (session): `make(label) -> World`, a new migrated world (pool, DAGs
  serialized, producer and consumers unpaused, consumer_paused paused); every world it made is
  dropped at the end of the session.
- `airflow_world` (module): one such World shared by the tests of a module.
- `producer_run` (module): a triggered run of tistate_producer in `airflow_world`, its task
  instances created and `scheduled` by Airflow's scheduler (held by the 0-slot pool).

State accumulates within a module (asset events, consumer runs, ADRQ rows): tests of one module
share the world, so order them or read `world.consumer_report()` before acting.
Every test using them needs the `airflow` executable (apache-airflow 3.3) and is marked `airflow`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_e2e import world as af

ADMIN_URL = os.environ.get(
    "TISTATE_TEST_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


@pytest.fixture(scope="session")
def airflow_world_factory() -> Iterator[Callable[[str], af.World]]:
    if shutil.which("airflow") is None:
        pytest.skip("the airflow command (apache-airflow 3.3) is not installed")
    root = Path(tempfile.mkdtemp(prefix="tistate_af_"))
    made: list[af.World] = []

    def make(label: str) -> af.World:
        db_name = f"tistate_af_{os.getpid()}_{len(made)}_{label}"
        world = af.create_world(ADMIN_URL, db_name, root / db_name)
        made.append(world)
        return world

    yield make
    for world in made:
        af.drop_database(ADMIN_URL, world.db_name)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def airflow_world(
    airflow_world_factory: Callable[[str], af.World], request: pytest.FixtureRequest
) -> af.World:
    label = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:20]
    return airflow_world_factory(label)


@pytest.fixture(scope="module")
def producer_run(airflow_world: af.World) -> af.ProducerRun:
    return af.start_producer_run(airflow_world)
