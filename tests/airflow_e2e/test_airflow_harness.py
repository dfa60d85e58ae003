"""The Airflow end-to-end harness proved with Airflow alone, no tistate: Airflow's own CLI migrates,
serializes, triggers and schedules; the test plays the API server (rows an asset-producing success
writes) and Airflow's scheduler must turn them into consumer runs. The tistate test does the same
with `tistate.ti_update_state` in place of `world.emit_asset_event_as_api_server`.

The tests share one world and run in file order: each builds on the previous one's rows.
"""

from __future__ import annotations

import pytest

from airflow_e2e import world as af

pytestmark = pytest.mark.airflow


def test_scheduler_creates_the_producer_run_and_holds_its_tis(
    airflow_world: af.World, producer_run: af.ProducerRun
) -> None:
    tis = producer_run.tis
    assert set(tis) == {*af.EMIT_TASKS, af.ALIAS_TASK, af.TEARDOWN_TASK}
    assert {tis[t].state for t in (*af.EMIT_TASKS, af.ALIAS_TASK)} == {"scheduled"}
    assert tis[af.TEARDOWN_TASK].state is None  # waits for its upstream tasks
    assert {ti.pool for ti in tis.values()} == {af.HOLD_POOL}
    assert all(ti.dag_version_id is not None for ti in tis.values())
    assert af.dag_run_state(airflow_world, af.PRODUCER, producer_run.run_id) == "running"
    with airflow_world.connect() as conn:
        rows = conn.execute("SELECT dag_id, is_paused FROM dag").fetchall()
        teardown = conn.execute(
            """SELECT t->'__var'->>'task_id' AS task_id FROM serialized_dag sd,
                      jsonb_array_elements(sd.data->'dag'->'tasks') t
                WHERE sd.dag_id = %s AND (t->'__var'->>'is_teardown')::bool""",
            (af.PRODUCER,),
        ).fetchall()
    paused = {row["dag_id"]: row["is_paused"] for row in rows}
    assert paused == {af.PRODUCER: False, af.PAUSED_CONSUMER: True} | dict.fromkeys(
        af.CONSUMERS, False
    )
    assert [row["task_id"] for row in teardown] == [af.TEARDOWN_TASK]
    assert af.consumer_report(airflow_world).queue == []


def test_asset_event_written_as_the_api_server_triggers_consumer_any(
    airflow_world: af.World, producer_run: af.ProducerRun
) -> None:
    emit_0 = producer_run.tis["emit_0"]
    af.start_task_instance(airflow_world, emit_0.id)
    assert af.task_instances(airflow_world, af.PRODUCER, producer_run.run_id)["emit_0"].state == (
        "running"
    )
    event_id = af.emit_asset_event_as_api_server(
        airflow_world, emit_0, "asset_0", producer_run.run_id
    )
    with airflow_world.connect() as conn:
        row = conn.execute(
            """SELECT e.timestamp > max(r.created_at) AS after_reference
                 FROM asset_event e JOIN dag_schedule_asset_reference r USING (asset_id)
                WHERE e.id = %s GROUP BY e.timestamp""",
            (event_id,),
        ).fetchone()
    assert row is not None
    assert row["after_reference"]  # else the scheduler's window (catchup floor) skips the event
    before = af.consumer_report(airflow_world)
    assert {q.target_dag_id for q in before.queue} == {"consumer_any", "consumer_all"}

    report = af.schedule_consumers(airflow_world, num_runs=1)

    [run] = report.runs["consumer_any"]
    assert run.event_ids == (event_id,)
    assert report.queued_for("consumer_any") == []  # the scheduler drained what it consumed
    assert report.runs["consumer_all"] == []  # waits for asset_1 .. asset_9
    assert [q.asset_name for q in report.queued_for("consumer_all")] == ["asset_0"]
    assert report.runs["consumer_alias"] == []
    assert report.runs[af.PAUSED_CONSUMER] == []
    assert report.queued_for(af.PAUSED_CONSUMER) == []
    # the scheduler executed nothing: the producer's other TIs are still held
    states = af.task_instances(airflow_world, af.PRODUCER, producer_run.run_id)
    assert states["emit_0"].state == "success"
    assert {states[t].state for t in af.EMIT_TASKS[1:]} == {"scheduled"}


def test_a_later_event_makes_a_second_run_consuming_only_the_new_event(
    airflow_world: af.World, producer_run: af.ProducerRun
) -> None:
    """The window of an asset-triggered run starts after the previous one's run_after."""
    first_run = af.consumer_report(airflow_world).runs["consumer_any"][0]
    emit_1 = producer_run.tis["emit_1"]
    af.start_task_instance(airflow_world, emit_1.id)
    event_id = af.emit_asset_event_as_api_server(
        airflow_world, emit_1, "asset_1", producer_run.run_id
    )

    report = af.schedule_consumers(airflow_world, num_runs=1)

    [first, second] = report.runs["consumer_any"]
    assert first.id == first_run.id
    assert second.event_ids == (event_id,)
    assert second.run_after > first_run.run_after
    assert report.runs["consumer_all"] == []
    assert [q.asset_name for q in report.queued_for("consumer_all")] == ["asset_0", "asset_1"]
    print(f"airflow harness timings: {airflow_world.timing_report()}")
