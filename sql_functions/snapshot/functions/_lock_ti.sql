-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._lock_ti(p_ti_id uuid, p_lock_timeout interval DEFAULT NULL::interval)
 RETURNS tistate._ti_context
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_ctx tistate._ti_context;
BEGIN
    PERFORM tistate._set_lock_timeout(p_lock_timeout);
    SELECT ROW(ti.id, ti.task_id, ti.dag_id, ti.run_id, ti.map_index, ti.state, ti.try_number, ti.hostname,
               ti.unixname, ti.pid, ti.start_date, ti.rendered_map_index, ti.next_kwargs)::tistate._ti_row,
           dr.logical_date, d.owners, d.fail_fast, dr.partition_key
    INTO v_ctx
    FROM task_instance AS ti
    JOIN dag_run AS dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
    JOIN dag AS d ON d.dag_id = ti.dag_id
    WHERE ti.id = p_ti_id
    FOR UPDATE OF ti;
    IF NOT FOUND THEN
        PERFORM tistate._raise_missing_ti(p_ti_id);
    END IF;
    RETURN v_ctx;
END
$function$;

COMMENT ON FUNCTION tistate._lock_ti(p_ti_id uuid, p_lock_timeout interval) IS 'Lock one task instance row (bounded by lock_timeout) with its run and DAG facts; TS404/TS410 if absent';
