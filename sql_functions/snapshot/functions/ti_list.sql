-- defined by migration 0007_read_functions.sql
-- EXECUTE granted to: tistate_operator
CREATE OR REPLACE FUNCTION tistate.ti_list(p_dag_id text DEFAULT NULL::text, p_run_id text DEFAULT NULL::text, p_state text DEFAULT NULL::text, p_limit integer DEFAULT 100)
 RETURNS TABLE(id uuid, dag_id text, run_id text, task_id text, map_index integer, state text, try_number integer, max_tries integer, hostname text, start_date timestamp with time zone, end_date timestamp with time zone, duration double precision, updated_at timestamp with time zone)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
AS $function$
BEGIN
    PERFORM tistate._check_limit(p_limit, 'limit', 10000);
    RETURN QUERY
    SELECT ti.id, ti.dag_id::text, ti.run_id::text, ti.task_id::text, ti.map_index, ti.state::text,
           ti.try_number, ti.max_tries, ti.hostname::text, ti.start_date, ti.end_date, ti.duration,
           ti.updated_at
    FROM task_instance AS ti
    WHERE (p_dag_id IS NULL OR ti.dag_id = p_dag_id)
      AND (p_run_id IS NULL OR ti.run_id = p_run_id)
      -- 'none' selects task instances without a state
      AND (p_state IS NULL OR ti.state IS NOT DISTINCT FROM nullif(p_state, 'none'))
    ORDER BY ti.dag_id, ti.run_id, ti.task_id, ti.map_index
    LIMIT p_limit;
END
$function$;

COMMENT ON FUNCTION tistate.ti_list(p_dag_id text, p_run_id text, p_state text, p_limit integer) IS 'Task instances filtered by dag, run and state (''none'' for no state), ordered by dag_id, run_id, task_id, map_index; at most p_limit (0..10000, else TS422)';
