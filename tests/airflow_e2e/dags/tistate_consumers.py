"""The consumer DAGs of the Airflow end-to-end harness (tests/airflow_e2e/world.py).

- `consumer_any`: any of asset_0 .. asset_4;
- `consumer_all`: all of asset_0 .. asset_9;
- `consumer_alias`: the alias `tistate_alias`;
- `consumer_paused`: asset_0, created paused (the harness never unpauses it).

Their tasks sit in the 0-slot pool too, so the runs the scheduler creates never execute anything.
"""

from __future__ import annotations

from functools import reduce
from typing import Any

from airflow.sdk import DAG, Asset, AssetAlias, task
from airflow.sdk.definitions.asset import BaseAsset

HOLD_POOL = "tistate_hold"
ASSETS: list[BaseAsset] = [
    Asset(name=f"asset_{i}", uri=f"s3://bucket/asset/{i}") for i in range(10)
]


def consumer(dag_id: str, schedule: Any, *, paused: bool = False) -> DAG:
    with DAG(
        dag_id=dag_id,
        schedule=schedule,
        catchup=False,
        # None: [core] dags_are_paused_at_creation (True); world.unpause() resumes the others
        is_paused_upon_creation=True if paused else None,
        # Held runs never finish; room for every run a burst test makes (Airflow's default: 16).
        max_active_runs=1000,
        default_args={"pool": HOLD_POOL},
        tags=["tistate-e2e"],
    ) as dag:

        @task(task_id="consume")
        def consume() -> None:
            pass

        consume()
    return dag


consumer("consumer_any", reduce(lambda a, b: a | b, ASSETS[:5]))
consumer("consumer_all", reduce(lambda a, b: a & b, ASSETS))
consumer("consumer_alias", AssetAlias("tistate_alias"))
consumer("consumer_paused", ASSETS[0], paused=True)
