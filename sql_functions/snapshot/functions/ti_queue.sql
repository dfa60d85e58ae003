-- defined by migration 0006_worker_and_operator_functions.sql
-- EXECUTE granted to: tistate_operator
CREATE OR REPLACE FUNCTION tistate.ti_queue(p_ti_id uuid, p_now timestamp with time zone DEFAULT clock_timestamp(), p_lock_timeout interval DEFAULT NULL::interval)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
 SET lock_timeout TO '2s'
AS $function$
DECLARE
    v_ctx       tistate._ti_context;
    v_previous  text;
    v_new_try   boolean;
    v_result    tistate.state_update_result;
    v_started   timestamptz := clock_timestamp();
BEGIN
    PERFORM tistate._standalone_only('ti_queue', 'Airflow''s scheduler queues task instances');
    v_ctx := tistate._lock_ti(p_ti_id, p_lock_timeout);
    v_result.lock_wait_ms := extract(epoch FROM clock_timestamp() - v_started) * 1000;
    v_previous := (v_ctx.ti).state;
    v_result.ti_id := p_ti_id;
    v_result.previous_state := v_previous;
    v_result.asset_event_ids := '{}';
    v_result.queued_dag_ids := '{}';
    IF v_previous = 'queued' THEN
        -- Already queued: the no-op, so a retried call is harmless.
        v_result.new_state := 'queued';
        v_result.applied := false;
        RETURN v_result;
    END IF;
    IF coalesce(v_previous, 'none') NOT IN ('none', 'scheduled', 'up_for_retry', 'up_for_reschedule', 'deferred') THEN
        PERFORM tistate._invalid_state(v_ctx, format('TI in state %s cannot be queued', coalesce(v_previous, 'none')));
    END IF;
    -- Airflow's scheduler counts a new try when it schedules a TI from none or up_for_retry
    -- (DagRun.schedule_tis); not after a reschedule, not when a trigger resumes a deferred TI, and
    -- not for scheduled (counted when it was scheduled).
    v_new_try := v_previous IS NULL OR v_previous = 'up_for_retry';

    UPDATE task_instance AS ti SET
        state = 'queued',
        try_number = ti.try_number + CASE WHEN v_new_try THEN 1 ELSE 0 END,
        scheduled_dttm = CASE WHEN v_previous = 'scheduled' THEN ti.scheduled_dttm ELSE p_now END,
        queued_dttm = p_now,
        -- A resumed deferral keeps next_method/next_kwargs for ti_run; its trigger is done.
        trigger_id = NULL,
        trigger_timeout = NULL,
        updated_at = p_now
    WHERE ti.id = p_ti_id;

    -- The log row carries the try being queued.
    v_ctx.ti.try_number := (v_ctx.ti).try_number + CASE WHEN v_new_try THEN 1 ELSE 0 END;
    PERFORM tistate._audit(v_ctx, 'queued', p_now,
                           jsonb_build_object('previous_state', v_previous, 'new_try', v_new_try)::text);
    v_result.new_state := 'queued';
    v_result.applied := true;
    RETURN v_result;
END
$function$;

COMMENT ON FUNCTION tistate.ti_queue(p_ti_id uuid, p_now timestamp with time zone, p_lock_timeout interval) IS 'The scheduler''s step: none/scheduled/up_for_retry/up_for_reschedule/deferred -> queued (try_number + 1 from none or up_for_retry); queued is a no-op; TS404/TS410/TS409';
