"""The floor: the bench's success as one hand-written statement, the same rows as the function.

What `tistate.ti_update_state` writes for the bench payload (counted with pg_stat_xact_user_tables
around one call, relay mode): the task_instance row updated to success, 6 asset_event rows (1
direct, 5 through an alias) with their 6 asset_event_producer rows, 5 asset_alias_asset_event links,
the asset_alias_asset pairs (ON CONFLICT DO NOTHING: new only on a fresh database), 11
asset_dag_run_queue upserts (7-8 consumer DAGs over 6 assets), 1 log row and 1
asset_event_outbox row. This statement writes exactly those from the same inputs (the TI id and
its payload in bench.ti_map), resolving the assets, aliases and consumers as any implementation
must, but with no validation, no state machine and one row lock (the UPDATE's own): the least a
database can do for this success. pgbench runs it as it runs the function (`raw`), one statement
per transaction, so raw / floor is what the function costs beyond its writes.
"""

from __future__ import annotations

FLOOR_STATEMENT = """\
WITH m AS (
    SELECT ti_id, payload FROM bench.ti_map WHERE batch_id = :batch AND rn = :rn
),
ti AS (
    UPDATE tistate.task_instance AS ti SET
        state = 'success',
        end_date = (m.payload ->> 'end_date')::timestamptz,
        duration = extract(epoch FROM (m.payload ->> 'end_date')::timestamptz - ti.start_date),
        next_method = NULL, next_kwargs = NULL, updated_at = now()
    FROM m WHERE ti.id = m.ti_id AND ti.state = 'running'
    RETURNING ti.id, ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number, ti.hostname,
              m.payload
),
ev AS MATERIALIZED (
    SELECT nextval('tistate.asset_event_id_seq')::integer AS event_id, x.*
    FROM (
        SELECT a.id AS asset_id, a.name, a.uri, al.id AS alias_id,
               coalesce(e.extra, '{}') AS extra, ti.id AS ti_id, ti.dag_id, ti.task_id, ti.run_id,
               ti.map_index, ti.try_number
        FROM ti
        CROSS JOIN ROWS FROM (jsonb_to_recordset(ti.payload -> 'outlet_events')
                 AS (source_alias_name text, dest_asset_key jsonb, extra jsonb))
             WITH ORDINALITY AS e (source_alias_name, dest_asset_key, extra, ord)
        JOIN tistate.asset AS a
          ON a.name = e.dest_asset_key ->> 'name' AND a.uri = e.dest_asset_key ->> 'uri'
        LEFT JOIN tistate.asset_alias AS al ON al.name = e.source_alias_name
        ORDER BY al.id IS NOT NULL, a.id, e.ord  -- the function's event id order
    ) AS x
),
new_events AS (
    INSERT INTO tistate.asset_event (id, asset_id, extra, source_task_id, source_dag_id,
                                     source_run_id, source_map_index, "timestamp")
    SELECT event_id, asset_id, extra, task_id, dag_id, run_id, map_index, now() FROM ev
),
producers AS (
    INSERT INTO tistate.asset_event_producer (event_id, ti_id, try_number)
    SELECT event_id, ti_id, try_number FROM ev
),
links AS (
    INSERT INTO tistate.asset_alias_asset_event (alias_id, event_id)
    SELECT alias_id, event_id FROM ev WHERE alias_id IS NOT NULL ORDER BY 1, 2
),
alias_assets AS (
    INSERT INTO tistate.asset_alias_asset (alias_id, asset_id)
    SELECT DISTINCT alias_id, asset_id FROM ev WHERE alias_id IS NOT NULL ORDER BY 1, 2
    ON CONFLICT DO NOTHING
),
queued AS (
    -- Sorted, as the function does: concurrent completions take the queue rows' locks in order.
    INSERT INTO tistate.asset_dag_run_queue AS q (asset_id, target_dag_id, created_at)
    SELECT c.asset_id, c.dag_id, now()
    FROM (SELECT ev.asset_id, r.dag_id FROM ev
          JOIN tistate.dag_schedule_asset_reference AS r ON r.asset_id = ev.asset_id
          UNION
          SELECT ev.asset_id, r.dag_id FROM ev
          JOIN tistate.dag_schedule_asset_alias_reference AS r ON r.alias_id = ev.alias_id
          UNION
          SELECT ev.asset_id, r.dag_id FROM ev
          JOIN tistate.dag_schedule_asset_name_reference AS r ON r.name = ev.name
          UNION
          SELECT ev.asset_id, r.dag_id FROM ev
          JOIN tistate.dag_schedule_asset_uri_reference AS r ON r.uri = ev.uri) AS c
    JOIN tistate.dag AS d ON d.dag_id = c.dag_id
    WHERE NOT d.is_paused AND NOT d.is_stale AND NOT d.timetable_partitioned
    ORDER BY 1, 2
    ON CONFLICT (asset_id, target_dag_id)
    DO UPDATE SET created_at = greatest(q.created_at, excluded.created_at)
),
audit AS (
    INSERT INTO tistate.log (dttm, dag_id, task_id, run_id, map_index, try_number, event,
                             logical_date, owner, extra)
    SELECT now(), ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number, 'success',
           dr.logical_date, d.owners,
           CASE WHEN coalesce(ti.hostname, '') <> ''
                THEN jsonb_build_object('host_name', ti.hostname)::text END
    FROM ti
    JOIN tistate.dag_run AS dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
    JOIN tistate.dag AS d ON d.dag_id = ti.dag_id
),
outbox AS (
    -- What the function writes in the service's mode (notify_events = relay); the relay
    -- running beside pgbench announces and deletes it, as for raw.
    INSERT INTO tistate.asset_event_outbox (event_ids)
    SELECT array_agg(event_id ORDER BY event_id) FROM ev HAVING count(*) > 0
)
SELECT count(*) FROM ti"""


def floor_script() -> str:
    """The pgbench script: each client finishes its own rows, as raw's script does."""
    return "\\set k :k + 1\n\\set rn :client_id * :per + :k\n" + FLOOR_STATEMENT + ";\n"
