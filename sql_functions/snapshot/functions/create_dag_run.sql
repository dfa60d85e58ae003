-- defined by migration 0004_dag_definitions.sql
-- EXECUTE granted to: tistate_operator
CREATE OR REPLACE FUNCTION tistate.create_dag_run(p_dag_id text, p_run_id text, p_logical_date timestamp with time zone DEFAULT NULL::timestamp with time zone, p_conf jsonb DEFAULT '{}'::jsonb, p_now timestamp with time zone DEFAULT clock_timestamp(), p_partition_key text DEFAULT NULL::text)
 RETURNS TABLE(task_id text, map_index integer, ti_id uuid)
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
 SET lock_timeout TO '2s'
AS $function$
BEGIN
    PERFORM tistate._standalone_only('create_dag_run', 'Airflow''s scheduler creates runs and their task instances');
    IF p_run_id IS NULL OR btrim(p_run_id) = '' OR length(p_run_id) > 250 OR octet_length(p_run_id) > 250 THEN
        PERFORM tistate._invalid('run_id', 'must be 1 to 250 characters and at most 250 bytes');
    END IF;
    PERFORM tistate._json_object(p_conf, 'conf');
    PERFORM tistate._partition_key(to_jsonb(p_partition_key), 'partition_key');
    PERFORM 1 FROM dag AS d WHERE d.dag_id = p_dag_id;
    IF NOT FOUND THEN
        PERFORM tistate._raise('TS404', format('dag %s not found', p_dag_id),
                               jsonb_build_object('reason', 'not_found', 'dag_id', p_dag_id),
                               'define it first: tistate dag define FILE (see examples/ and docs/dags.md)');
    END IF;
    BEGIN
        INSERT INTO dag_run (dag_id, run_id, logical_date, state, run_type, run_after, queued_at,
                                     start_date, conf, partition_key, created_at, updated_at)
        VALUES (p_dag_id, p_run_id, p_logical_date, 'running', 'manual', coalesce(p_logical_date, p_now), p_now,
                p_now, coalesce(p_conf, '{}'), p_partition_key, p_now, p_now);
    EXCEPTION WHEN unique_violation THEN
        PERFORM tistate._raise('TS409', format('dag run %s of dag %s already exists (same run_id or logical_date)', p_run_id, p_dag_id),
                               jsonb_build_object('reason', 'already_exists', 'dag_id', p_dag_id, 'run_id', p_run_id));
    END;
    RETURN QUERY
    INSERT INTO task_instance AS ti (id, dag_id, run_id, task_id, map_index, state, try_number, max_tries,
                                             pool, pool_slots, queue, priority_weight, operator,
                                             queued_dttm, scheduled_dttm, updated_at)
    SELECT tistate._uuid7(p_now), t.dag_id, p_run_id, t.task_id, -1, 'queued', 1, t.max_tries,
           t.pool, t.pool_slots, t.queue, t.priority_weight, t.operator, p_now, p_now, p_now
    FROM tistate.dag_task AS t
    WHERE t.dag_id = p_dag_id
    ORDER BY t.task_id
    RETURNING ti.task_id::text, ti.map_index, ti.id;
END
$function$;

COMMENT ON FUNCTION tistate.create_dag_run(p_dag_id text, p_run_id text, p_logical_date timestamp with time zone, p_conf jsonb, p_now timestamp with time zone, p_partition_key text) IS 'Create a running dag run with one queued task instance (try_number 1) per task of the DAG; TS404 unknown DAG, TS409 duplicate run';
