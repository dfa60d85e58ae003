"""The producer of the live end-to-end test (tests/airflow_e2e/test_airflow_live.py): its tasks run
for real (LocalExecutor, Airflow's task supervisor and Task SDK) and finish through tistate.

- `emit_asset` has the outlet asset `live_a` and sets its event's extra;
- `emit_alias` has the outlet alias `live_alias` and attaches an event on `live_b` to it at run
  time (`outlet_events[alias].add(Asset(...), extra={...})`).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Asset, AssetAlias, task

LIVE_A = Asset(name="live_a", uri="s3://live/a")
LIVE_B = Asset(name="live_b", uri="s3://live/b")
LIVE_ALIAS = AssetAlias("live_alias")

with DAG(dag_id="live_producer", schedule=None, catchup=False, tags=["tistate-e2e-live"]):

    @task(task_id="emit_asset", outlets=[LIVE_A])
    def emit_asset(**context: Any) -> None:
        context["outlet_events"][LIVE_A].extra = {"rows": 42, "from": "emit_asset"}

    @task(task_id="emit_alias", outlets=[LIVE_ALIAS])
    def emit_alias(**context: Any) -> None:
        context["outlet_events"][LIVE_ALIAS].add(LIVE_B, extra={"via": "live_alias"})

    emit_asset()
    emit_alias()
