"""The burst DAG of the Airflow end-to-end tests: one mapped task, `emit`, expanded to BURST task
instances, each with the outlets asset_0 and the alias `tistate_alias`. One triggered run gives the
test as many running task instances as it wants to finish at once.

Its tasks sit in the 0-slot pool (world.HOLD_POOL): only the test changes their states.
"""

from __future__ import annotations

from airflow.sdk import DAG, Asset, AssetAlias, task

HOLD_POOL = "tistate_hold"
BURST = 100

with DAG(
    dag_id="tistate_burst",
    schedule=None,
    catchup=False,
    default_args={"pool": HOLD_POOL},
    tags=["tistate-e2e"],
):

    @task(
        task_id="emit",
        outlets=[Asset(name="asset_0", uri="s3://bucket/asset/0"), AssetAlias("tistate_alias")],
    )
    def emit(i: int) -> None:
        pass

    emit.expand(i=list(range(BURST)))
