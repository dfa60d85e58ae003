-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._archive_try(p_ti_id uuid, p_state text, p_end_date timestamp with time zone, p_now timestamp with time zone, p_rendered_map_index text DEFAULT NULL::text, p_retry_delay double precision DEFAULT NULL::double precision, p_retry_reason text DEFAULT NULL::text)
 RETURNS uuid
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_new_id uuid := tistate._uuid7(p_now);
BEGIN
    -- A try is over and the next one starts under a new id, as Airflow does on a retry and on a
    -- clear: whoever still holds the old id (a stale worker's token) gets TS410 from now on.
    -- 1. The finished try goes to history under its old id, with the state it ended in and its end
    --    (p_end_date, else the row's, else p_now); at most once per try.
    INSERT INTO task_instance_history (
        task_instance_id, task_id, dag_id, run_id, map_index, try_number, start_date, end_date, duration,
        state, max_tries, hostname, unixname, pool, pool_slots, queue, priority_weight, operator,
        custom_operator_name, queued_dttm, scheduled_dttm, queued_by_job_id, pid, executor, executor_config,
        updated_at, rendered_map_index, context_carrier, span_status, external_executor_id, trigger_id,
        trigger_timeout, next_method, next_kwargs, task_display_name, dag_version_id, retry_delay_override, retry_reason)
    SELECT ti.id, ti.task_id, ti.dag_id, ti.run_id, ti.map_index, ti.try_number, ti.start_date,
           coalesce(p_end_date, ti.end_date, p_now),
           extract(epoch FROM coalesce(p_end_date, ti.end_date, p_now) - ti.start_date),
           p_state, ti.max_tries, ti.hostname, ti.unixname, ti.pool, ti.pool_slots, ti.queue, ti.priority_weight,
           ti.operator, ti.custom_operator_name, ti.queued_dttm, ti.scheduled_dttm, ti.queued_by_job_id, ti.pid,
           ti.executor, ti.executor_config, p_now, coalesce(p_rendered_map_index, ti.rendered_map_index),
           ti.context_carrier, ti.span_status, ti.external_executor_id, ti.trigger_id,
           ti.trigger_timeout AT TIME ZONE 'UTC', NULL, NULL, ti.task_display_name,
           ti.dag_version_id, p_retry_delay, p_retry_reason
    FROM task_instance AS ti
    WHERE ti.id = p_ti_id
    ON CONFLICT DO NOTHING;
    -- 2. task_reschedule references the id without ON UPDATE CASCADE: its rows belong to the old try.
    DELETE FROM task_reschedule AS r WHERE r.ti_id = p_ti_id;
    -- 3. The live row takes the new uuid7 id.
    UPDATE task_instance AS ti SET id = v_new_id WHERE ti.id = p_ti_id;
    RETURN v_new_id;
END
$function$;

COMMENT ON FUNCTION tistate._archive_try(p_ti_id uuid, p_state text, p_end_date timestamp with time zone, p_now timestamp with time zone, p_rendered_map_index text, p_retry_delay double precision, p_retry_reason text) IS 'End a try: its history row (under the old id, in the state it ended in), its reschedule rows deleted, and a new uuid7 id for the next try; returns the new id';
