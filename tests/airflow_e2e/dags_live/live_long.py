"""A task that outlives its token: it sleeps for TISTATE_LIVE_SLEEP seconds (set by the test to
several of Airflow's `[execution_api] jwt_expiration_time`), heartbeating through tistate only,
which refreshes the token (Refreshed-API-Token); its success then needs the refreshed token."""

from __future__ import annotations

import os
import time

from airflow.sdk import DAG, task

with DAG(dag_id="live_long", schedule=None, catchup=False, tags=["tistate-e2e-live"]):

    @task(task_id="outlive_the_token")
    def outlive_the_token() -> None:
        time.sleep(float(os.environ.get("TISTATE_LIVE_SLEEP", "50")))

    outlive_the_token()
