-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._peek_ti(p_ti_id uuid)
 RETURNS tistate._ti_context
 LANGUAGE sql
 STABLE
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
AS $function$
    SELECT ROW(ti, dr.logical_date, d.owners, d.fail_fast, dr.partition_key, dr.partition_date)::tistate._ti_context
    FROM tistate.task_instance AS ti
    JOIN tistate.dag_run AS dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
    JOIN tistate.dag AS d ON d.dag_id = ti.dag_id
    WHERE ti.id = p_ti_id;
$function$;

COMMENT ON FUNCTION tistate._peek_ti(p_ti_id uuid) IS 'The task instance with its run and DAG facts, without a lock (NULL when absent)';
