"""Fixtures of the Airflow end-to-end tests: a real Airflow 3.3 metadata database (world.py).

- `airflow_world_factory` (session): `make(label) -> World`, a new migrated world (0-slot pool,
  DAGs serialized, producer and consumers unpaused, consumer_paused paused); every world it made
  is dropped at the end of the session. About 15-30 s a world.
- `airflow_world` (module): one such World shared by the tests of a module.
- `producer_run` (module): a triggered run of tistate_producer in `airflow_world`, its task
  instances created and `scheduled` by Airflow's scheduler (held by the 0-slot pool); 5-9 s.

State accumulates within a module (asset events, consumer runs, ADRQ rows): tests of one module
share the world and run in file order, so each test uses TIs of its own and asserts on what
changed (`world.consumer_report()` before, `world.schedule_consumers()` after).

Reuse for tistate (a module in this package, marked `airflow`): add a module fixture that installs
tistate into `airflow_world.dsn` (Airflow mode, `--airflow-schema public`), then per event:
`world.start_task_instance(w, ti.id)` (or `queue_task_instance` + `execution_api([{"op": "run"}])`
for Airflow's own /run), call `tistate.ti_update_state(ti.id, payload)` and commit, then
`report = world.schedule_consumers(w)` and assert on `report.runs[...]` / `report.queue`.
Every test using them needs apache-airflow 3.3 in this interpreter (else skipped).
"""

from __future__ import annotations

import importlib.metadata
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
    try:  # a metadata look-up: importing airflow here would configure it in the test process
        core = importlib.metadata.version("apache-airflow-core")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("apache-airflow 3.3 (with the postgres extra) is not installed")
    if not core.startswith("3.3."):
        pytest.skip(f"the harness targets Airflow 3.3, found apache-airflow-core {core}")
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
