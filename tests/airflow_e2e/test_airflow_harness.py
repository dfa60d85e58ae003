"""The Airflow end-to-end harness proved with Airflow alone, no tistate: Airflow's own CLI migrates,
serializes, triggers and schedules; the test plays the API server (rows an asset-producing success
writes) and Airflow's scheduler must turn them into consumer runs. The tistate test does the same
with `tistate.ti_update_state` in place of `world.emit_asset_event_as_api_server`.

The tests share one world and run in file order: each builds on the previous one's rows.
"""

from __future__ import annotations

from datetime import timedelta

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
    assert paused == {
        af.PRODUCER: False,
        af.BURST_DAG: False,
        af.PAUSED_CONSUMER: True,
    } | dict.fromkeys(af.CONSUMERS, False)
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


def test_airflow_execution_api_alias_and_asset_events_trigger_their_consumers(
    airflow_world: af.World, producer_run: af.ProducerRun
) -> None:
    """Control of the SQL stand-in and of the alias path: Airflow's own /run and /state routes."""
    alias_ti, emit_2 = producer_run.tis[af.ALIAS_TASK], producer_run.tis["emit_2"]
    for ti in (alias_ti, emit_2):
        af.queue_task_instance(airflow_world, ti.id)
    answers = af.execution_api(
        airflow_world,
        [
            {"op": "run", "ti": alias_ti.id},
            {"op": "succeed", "ti": alias_ti.id, **af.success_payload(alias_assets=[7])},
            {"op": "run", "ti": emit_2.id},
            {"op": "succeed", "ti": emit_2.id, **af.success_payload([2])},
        ],
    )
    assert [a["op"] for a in answers] == ["run", "succeed", "run", "succeed"]
    with airflow_world.connect() as conn:
        events = conn.execute(
            """SELECT e.id, a.name, exists(SELECT FROM asset_alias_asset_event l
                                            WHERE l.event_id = e.id) AS via_alias
                 FROM asset_event e JOIN asset a ON a.id = e.asset_id
                WHERE e.source_task_id IN (%s, %s) ORDER BY e.id""",
            (af.ALIAS_TASK, "emit_2"),
        ).fetchall()
    by_asset = {row["name"]: row for row in events}
    assert set(by_asset) == {"asset_7", "asset_2"}
    assert by_asset["asset_7"]["via_alias"]
    assert not by_asset["asset_2"]["via_alias"]

    report = af.schedule_consumers(airflow_world, num_runs=1)

    [alias_run] = report.runs["consumer_alias"]
    assert alias_run.event_ids == (by_asset["asset_7"]["id"],)
    assert report.runs["consumer_any"][-1].event_ids == (by_asset["asset_2"]["id"],)
    assert len(report.runs["consumer_any"]) == 3
    assert report.runs["consumer_all"] == []
    assert [q.asset_name for q in report.queued_for("consumer_all")] == [
        "asset_0",
        "asset_1",
        "asset_2",
        "asset_7",
    ]
    states = af.task_instances(airflow_world, af.PRODUCER, producer_run.run_id)
    assert states[af.ALIAS_TASK].state == states["emit_2"].state == "success"


def test_consumer_all_runs_once_every_asset_has_an_event(
    airflow_world: af.World, producer_run: af.ProducerRun
) -> None:
    """The remaining assets (3, 4, 5, 6, 8, 9) through the SQL stand-in: one run of consumer_all
    consuming every event of its ten assets since its references were created."""
    for i in (3, 4, 5, 6, 8, 9):
        ti = producer_run.tis[f"emit_{i}"]
        af.start_task_instance(airflow_world, ti.id)
        af.emit_asset_event_as_api_server(airflow_world, ti, f"asset_{i}", producer_run.run_id)
    with airflow_world.connect() as conn:
        all_events = [
            row["id"]
            for row in conn.execute(
                """SELECT e.id FROM asset_event e JOIN asset a ON a.id = e.asset_id
                    WHERE a.name = ANY(%s) ORDER BY e.id""",
                ([af.asset_name(i) for i in range(10)],),
            ).fetchall()
        ]
    assert len(all_events) == 10

    report = af.schedule_consumers(airflow_world, num_runs=1)

    [all_run] = report.runs["consumer_all"]
    assert all_run.event_ids == tuple(all_events)
    assert report.queued_for("consumer_all") == []
    assert len(report.runs["consumer_any"]) == 4  # asset_3, asset_4 in one run (one loop)
    assert report.runs[af.PAUSED_CONSUMER] == []
    assert report.queue == []


def test_an_event_older_than_the_window_still_makes_a_run_but_is_not_consumed(
    airflow_world: af.World, producer_run: af.ProducerRun
) -> None:
    """The ADRQ row alone makes the run; the events it consumes are those with a timestamp in
    (previous asset_triggered run_after | min(reference created_at) without catchup, newest ADRQ
    created_at]. A backdated event gives a run with no dagrun_asset_event: assert on event ids.
    The TI stays running through the scheduler loop."""
    last = af.consumer_report(airflow_world).runs["consumer_any"][-1]
    ti = producer_run.tis["emit_7"]
    af.start_task_instance(airflow_world, ti.id)
    old = last.run_after - timedelta(seconds=1)
    event_id = af.emit_asset_event_as_api_server(
        airflow_world, ti, "asset_0", producer_run.run_id, timestamp=old, finish=False
    )

    report = af.schedule_consumers(airflow_world, num_runs=1)

    newest = report.runs["consumer_any"][-1]
    assert newest.id != last.id
    assert newest.event_ids == ()
    assert event_id not in report.event_ids("consumer_any")
    assert len(report.runs["consumer_all"]) == 1  # asset_0 alone: not ready
    assert [q.asset_name for q in report.queued_for("consumer_all")] == ["asset_0"]
    # a TI left running by start_task_instance survives a scheduler loop (not reset, not failed)
    states = af.task_instances(airflow_world, af.PRODUCER, producer_run.run_id)
    assert states["emit_7"].state == "running"
    assert states[af.TEARDOWN_TASK].state is None  # still waits for emit_7
    print(f"airflow harness timings: {airflow_world.timing_report()}")
