-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._run_context(p_ti_id uuid, p_previous_state text)
 RETURNS jsonb
 LANGUAGE sql
 STABLE
AS $function$
    -- Airflow's TIRunContext (Task SDK datamodels): what a worker needs to run the try.
    SELECT jsonb_build_object(
        'dag_run', jsonb_build_object(
            'dag_id', dr.dag_id, 'run_id', dr.run_id, 'logical_date', dr.logical_date,
            'data_interval_start', dr.logical_date, 'data_interval_end', dr.logical_date,
            'run_after', dr.run_after, 'start_date', dr.start_date, 'end_date', dr.end_date,
            'clear_number', dr.clear_number, 'run_type', dr.run_type, 'state', dr.state,
            'conf', coalesce(dr.conf, '{}'), 'consumed_asset_events', '[]'::jsonb,
            'partition_key', dr.partition_key, 'partition_date', dr.partition_date),
        'task_reschedule_count', (SELECT count(*) FROM task_reschedule AS r WHERE r.ti_id = ti.id),
        'max_tries', ti.max_tries,
        'variables', '[]'::jsonb,
        'connections', '[]'::jsonb,
        'xcom_keys_to_clear', '[]'::jsonb,
        'should_retry', p_previous_state = 'restarting' OR (ti.max_tries <> 0 AND ti.try_number <= ti.max_tries),
        'next_method', ti.next_method,
        'next_kwargs', CASE WHEN jsonb_typeof(ti.next_kwargs) = 'null' THEN NULL ELSE ti.next_kwargs END,
        'start_date', ti.start_date)
    FROM task_instance AS ti
    JOIN dag_run AS dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
    WHERE ti.id = p_ti_id;
$function$;

COMMENT ON FUNCTION tistate._run_context(p_ti_id uuid, p_previous_state text) IS 'The TIRunContext document returned by ti_run';
