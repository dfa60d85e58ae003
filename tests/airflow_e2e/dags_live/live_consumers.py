"""The consumers of the live end-to-end test: one scheduled on the asset `live_a`, one on the alias
`live_alias` (which resolves to `live_b` at run time). Airflow's scheduler creates their runs from
the events tistate wrote; their tasks run for real and finish through tistate too."""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Asset, AssetAlias, task


def consumer(dag_id: str, schedule: Any) -> None:
    with DAG(dag_id=dag_id, schedule=schedule, catchup=False, tags=["tistate-e2e-live"]):

        @task(task_id="consume")
        def consume() -> None:
            pass

        consume()


consumer("live_consumer_asset", [Asset(name="live_a", uri="s3://live/a")])
consumer("live_consumer_alias", AssetAlias("live_alias"))
