-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._apply_retry(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_old_id   uuid := (p_ctx.ti).id;
    v_new_id   uuid := tistate._uuid7(p_now);
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
    v_delay    double precision := (p_payload ->> 'retry_delay_seconds')::double precision;
    v_reason   text := p_payload ->> 'retry_reason';
    v_rendered text := CASE WHEN p_payload ? 'rendered_map_index'
                            THEN p_payload ->> 'rendered_map_index' ELSE (p_ctx.ti).rendered_map_index END;
BEGIN
    -- 1. The finished try goes to history, as failed, under its old id; at most once per try.
    INSERT INTO tistate.task_instance_history (
        task_instance_id, task_id, dag_id, run_id, map_index, try_number, start_date, end_date, duration,
        state, max_tries, hostname, unixname, pool, pool_slots, queue, priority_weight, operator,
        custom_operator_name, queued_dttm, scheduled_dttm, queued_by_job_id, pid, executor, executor_config,
        updated_at, rendered_map_index, context_carrier, span_status, external_executor_id, trigger_id,
        trigger_timeout, next_method, next_kwargs, task_display_name, retry_delay_override, retry_reason)
    SELECT ti.id, ti.task_id, ti.dag_id, ti.run_id, ti.map_index, ti.try_number, ti.start_date, v_end_date,
           extract(epoch FROM v_end_date - ti.start_date),
           'failed', ti.max_tries, ti.hostname, ti.unixname, ti.pool, ti.pool_slots, ti.queue, ti.priority_weight,
           ti.operator, ti.custom_operator_name, ti.queued_dttm, ti.scheduled_dttm, ti.queued_by_job_id, ti.pid,
           ti.executor, ti.executor_config, p_now, v_rendered, ti.context_carrier, ti.span_status,
           ti.external_executor_id, ti.trigger_id, ti.trigger_timeout, NULL, NULL, ti.task_display_name,
           v_delay, v_reason
    FROM tistate.task_instance AS ti
    WHERE ti.id = v_old_id
    ON CONFLICT DO NOTHING;

    -- 2. task_reschedule references the id without ON UPDATE CASCADE: its rows belong to the old try.
    DELETE FROM tistate.task_reschedule AS r WHERE r.ti_id = v_old_id;

    -- 3. The live row takes a new uuid7 id; the old id answers TS410 from now on.
    UPDATE tistate.task_instance AS ti SET
        id = v_new_id,
        state = 'up_for_retry',
        end_date = v_end_date,
        duration = extract(epoch FROM v_end_date - ti.start_date),
        next_method = NULL,
        next_kwargs = NULL,
        retry_delay_override = v_delay,
        retry_reason = v_reason,
        rendered_map_index = v_rendered,
        updated_at = p_now
    WHERE ti.id = v_old_id;

    PERFORM tistate._audit(p_ctx, 'up_for_retry', p_now);
    RETURN tistate._applied(p_ctx, 'up_for_retry', v_new_id);
END
$function$;

COMMENT ON FUNCTION tistate._apply_retry(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone) IS 'running -> up_for_retry: history row for the finished try (idempotent per try), reschedule rows deleted, retry fields, new uuid7 id';
