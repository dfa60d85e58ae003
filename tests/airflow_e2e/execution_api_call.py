"""Run in a subprocess by world.py: call Airflow's own Execution API routes in-process.

`python execution_api_call.py '<json>'` with AIRFLOW__* of a world in the environment; the json is
a list of steps, each {"op": "run", "ti": uuid, "pid": int} (PATCH /task-instances/{id}/run, what a
worker's supervisor sends first) or {"op": "succeed", "ti": uuid, "task_outlets": [AssetProfile],
"outlet_events": [...]} (PATCH /task-instances/{id}/state with state success, what the task runner
sends). It uses Airflow's InProcessExecutionAPI (the FastAPI app of the API server, as `dag.test()`
and the DAG processor use it; no JWT: authentication is bypassed the way Airflow bypasses it there)
and the Task SDK's HTTP client, so the rows written are exactly those of Airflow's API server.
Prints one json line per step: the route's answer.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

from airflow.api_fastapi.execution_api.app import InProcessExecutionAPI
from airflow.sdk.api.client import Client
from airflow.sdk.api.datamodels._generated import AssetProfile


def main(steps: list[dict[str, Any]]) -> None:
    api = InProcessExecutionAPI()
    client = Client(base_url=None, token="", dry_run=True, transport=api.transport)
    client.base_url = "http://in-process.invalid./"
    for step in steps:
        ti_id = uuid.UUID(step["ti"])
        when = datetime.now(UTC)
        if step["op"] == "run":
            context = client.task_instances.start(ti_id, int(step.get("pid", os.getpid())), when)
            print(json.dumps({"op": "run", "ti": str(ti_id), "max_tries": context.max_tries}))
        elif step["op"] == "succeed":
            outlets = [AssetProfile(**outlet) for outlet in step.get("task_outlets", [])]
            client.task_instances.succeed(
                ti_id,
                when,
                task_outlets=outlets,
                outlet_events=step.get("outlet_events", []),
                rendered_map_index=None,
            )
            print(json.dumps({"op": "succeed", "ti": str(ti_id)}))
        else:
            raise ValueError(f"unknown op {step['op']!r}")
        sys.stdout.flush()


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
