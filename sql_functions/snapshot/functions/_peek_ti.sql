-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._peek_ti(p_ti_id uuid)
 RETURNS tistate._ti_context
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_ctx tistate._ti_context;
BEGIN
    -- PL/pgSQL, not SQL: a SQL-language function's plan is rebuilt on every call (PostgreSQL < 18).
    SELECT ROW(ti.id, ti.task_id, ti.dag_id, ti.run_id, ti.map_index, ti.state, ti.try_number, ti.hostname,
               ti.unixname, ti.pid, ti.start_date, ti.rendered_map_index, ti.next_kwargs)::tistate._ti_row,
           dr.logical_date, d.owners, d.fail_fast, dr.partition_key
    INTO v_ctx
    FROM task_instance AS ti
    JOIN dag_run AS dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
    JOIN dag AS d ON d.dag_id = ti.dag_id
    WHERE ti.id = p_ti_id;
    RETURN v_ctx;
END
$function$;

COMMENT ON FUNCTION tistate._peek_ti(p_ti_id uuid) IS 'The task instance with its run and DAG facts, without a lock (NULL when absent)';
