-- defined by migration 0006_worker_and_operator_functions.sql
-- EXECUTE granted to: tistate_executor
CREATE OR REPLACE FUNCTION tistate.ti_skip_downstream(p_ti_id uuid, p_tasks jsonb, p_now timestamp with time zone DEFAULT clock_timestamp())
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
 SET lock_timeout TO '2s'
AS $function$
DECLARE
    v_targets jsonb;
    v_caller  task_instance;
    v_owners  text;
    v_logical timestamptz;
    v_count   integer;
BEGIN
    p_now := tistate._caller_now(p_now);  -- a worker uses the database clock (docs/dba.md)
    SELECT coalesce(jsonb_agg(DISTINCT jsonb_build_array(t.task_id, t.map_index)), '[]') INTO v_targets
    FROM tistate._skip_targets(p_tasks) AS t;
    PERFORM tistate._set_lock_timeout(NULL);

    -- The caller's row is read, not locked (as in Airflow).
    SELECT ti.* INTO v_caller FROM task_instance AS ti WHERE ti.id = p_ti_id;
    IF NOT FOUND THEN
        PERFORM tistate._raise_missing_ti(p_ti_id);
    END IF;
    SELECT d.owners, dr.logical_date INTO v_owners, v_logical
    FROM dag_run AS dr JOIN dag AS d ON d.dag_id = dr.dag_id
    WHERE dr.dag_id = v_caller.dag_id AND dr.run_id = v_caller.run_id;

    -- Lock the targets in id order (deterministic, so no deadlock with fail-fast or another skip).
    PERFORM 1
    FROM task_instance AS ti
    JOIN jsonb_array_elements(v_targets) AS t ON ti.task_id = t ->> 0 AND ti.map_index = (t ->> 1)::integer
    WHERE ti.dag_id = v_caller.dag_id AND ti.run_id = v_caller.run_id
      AND (ti.state IS NULL OR ti.state NOT IN ('running', 'success', 'failed'))
    ORDER BY ti.id
    FOR UPDATE OF ti;

    WITH changed AS (
        UPDATE task_instance AS ti SET
            state = 'skipped', start_date = p_now, end_date = p_now, updated_at = p_now
        FROM task_instance AS old
        JOIN jsonb_array_elements(v_targets) AS t ON old.task_id = t ->> 0 AND old.map_index = (t ->> 1)::integer
        WHERE old.id = ti.id AND old.dag_id = v_caller.dag_id AND old.run_id = v_caller.run_id
          AND (old.state IS NULL OR old.state NOT IN ('running', 'success', 'failed'))
        RETURNING ti.id, ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number, old.state AS old_state
    ),
    logged AS (
        INSERT INTO log (dttm, dag_id, task_id, run_id, map_index, try_number, event, logical_date, owner, extra)
        SELECT p_now, c.dag_id, c.task_id, c.run_id, c.map_index, c.try_number, 'skipped', v_logical, v_owners,
               jsonb_build_object('reason', 'skip_downstream', 'previous_state', c.old_state,
                                  'skipped_by_task_id', v_caller.task_id,
                                  'skipped_by_map_index', v_caller.map_index)::text
        FROM changed AS c
        ORDER BY c.id
        RETURNING 1
    )
    SELECT count(*) INTO v_count FROM logged;
    RETURN v_count;
END
$function$;

COMMENT ON FUNCTION tistate.ti_skip_downstream(p_ti_id uuid, p_tasks jsonb, p_now timestamp with time zone) IS 'The skip-downstream PATCH: p_tasks is a list of task ids or [task_id, map_index] pairs of the caller''s run; skips those not running/success/failed; returns the count; TS404/TS410/TS422';
