"""The producer DAG of the Airflow end-to-end harness (tests/airflow_e2e/world.py).

`emit_0` .. `emit_9` each declare one concrete asset outlet; `emit_alias` declares the asset alias
`tistate_alias` (the worker attaches the real asset to the alias at run time); `cleanup` is a
teardown, so tistate's fail-fast path finds `is_teardown` in `serialized_dag`.

Every task sits in the pool HOLD_POOL, which the harness creates with 0 slots: the scheduler creates
and schedules the task instances but never queues them to its executor, so only the test changes
their states.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Asset, AssetAlias, task, teardown

HOLD_POOL = "tistate_hold"
ASSETS = [Asset(name=f"asset_{i}", uri=f"s3://bucket/asset/{i}") for i in range(10)]
ALIAS = AssetAlias("tistate_alias")

with DAG(
    dag_id="tistate_producer",
    schedule=None,
    catchup=False,
    default_args={"pool": HOLD_POOL},
    tags=["tistate-e2e"],
):
    emits = []
    for i, asset in enumerate(ASSETS):

        @task(task_id=f"emit_{i}", outlets=[asset])
        def emit() -> None:
            pass

        emits.append(emit())

    @task(task_id="emit_alias", outlets=[ALIAS])
    def emit_alias() -> None:
        pass

    @teardown
    @task(task_id="cleanup")
    def cleanup() -> None:
        pass

    alias_task = emit_alias()
    teardown_task: Any = cleanup()  # typed Any: the Task SDK types @teardown as a Callable
    for upstream in [*emits, alias_task]:
        upstream >> teardown_task
