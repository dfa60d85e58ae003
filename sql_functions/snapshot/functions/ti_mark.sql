-- defined by migration 0012_state_names.sql
-- EXECUTE granted to: tistate_operator
CREATE OR REPLACE FUNCTION tistate.ti_mark(p_ti_id uuid, p_state text, p_reason text, p_now timestamp with time zone DEFAULT clock_timestamp(), p_lock_timeout interval DEFAULT NULL::interval)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
 SET lock_timeout TO '2s'
AS $function$
DECLARE
    v_state    text := nullif(p_state, 'none');
    v_finished boolean;
    v_ctx      tistate._ti_context;
    v_result   tistate.state_update_result;
    v_started  timestamptz;
    v_row_id   uuid := p_ti_id;
BEGIN
    IF v_state <> ALL (tistate._states()) THEN
        PERFORM tistate._invalid('state', format('%s is not a task instance state', v_state));
    END IF;
    IF p_reason IS NULL OR btrim(p_reason) = '' THEN
        PERFORM tistate._invalid('reason', 'an operator override needs a reason');
    END IF;
    IF length(p_reason) > 2000 THEN
        PERFORM tistate._invalid('reason', 'longer than 2000 characters');
    END IF;
    v_finished := v_state = ANY (tistate._finished_states()) OR v_state = 'up_for_retry';  -- the try ends

    v_started := clock_timestamp();
    v_ctx := tistate._lock_ti(p_ti_id, p_lock_timeout);
    v_result.lock_wait_ms := extract(epoch FROM clock_timestamp() - v_started) * 1000;
    v_result.ti_id := p_ti_id;
    v_result.previous_state := (v_ctx.ti).state;
    v_result.new_state := v_state;
    v_result.asset_event_ids := '{}';
    v_result.queued_dag_ids := '{}';
    IF (v_ctx.ti).state IS NOT DISTINCT FROM v_state THEN
        v_result.applied := false;
        RETURN v_result;
    END IF;

    -- Clearing a try that ran or finished (to none, scheduled or queued: it will run again) starts
    -- the next try under a new id with the ended try in history, as Airflow's clear does: the old
    -- worker's token answers TS410 instead of changing the new try. up_for_retry already has its new
    -- id; a deferred or rescheduled try resumes under its own.
    IF coalesce(v_state, 'none') IN ('none', 'scheduled', 'queued')
       AND (v_ctx.ti).state = ANY (tistate._finished_states() || ARRAY['running', 'restarting']) THEN
        v_row_id := tistate._archive_try(p_ti_id, (v_ctx.ti).state, NULL, p_now);
        v_result.new_ti_id := v_row_id;
    END IF;

    -- Airflow's TaskInstance.set_state: start_date kept or now; a finished (or up_for_retry) state
    -- gets an end_date and a duration. Finished and none states also drop the deferral fields so a
    -- later ti_run starts a fresh try instead of resuming. No events, same try number.
    UPDATE task_instance AS ti SET
        state = v_state,
        start_date = coalesce(ti.start_date, p_now),
        end_date = CASE WHEN v_finished THEN coalesce(ti.end_date, p_now) ELSE ti.end_date END,
        duration = CASE WHEN v_finished
                        THEN extract(epoch FROM coalesce(ti.end_date, p_now) - coalesce(ti.start_date, p_now))
                        ELSE ti.duration END,
        next_method = CASE WHEN v_finished OR v_state IS NULL THEN NULL ELSE ti.next_method END,
        next_kwargs = CASE WHEN v_finished OR v_state IS NULL THEN NULL ELSE ti.next_kwargs END,
        trigger_id = CASE WHEN v_finished OR v_state IS NULL THEN NULL ELSE ti.trigger_id END,
        trigger_timeout = CASE WHEN v_finished OR v_state IS NULL THEN NULL ELSE ti.trigger_timeout END,
        updated_at = p_now
    WHERE ti.id = v_row_id;

    PERFORM tistate._audit(v_ctx, 'mark ' || coalesce(v_state, 'none'), p_now,
                           (jsonb_build_object('reason', p_reason, 'previous_state', (v_ctx.ti).state,
                                              'new_state', v_state, 'host_name', (v_ctx.ti).hostname)
                           || CASE WHEN v_result.new_ti_id IS NULL THEN '{}'::jsonb
                                   ELSE jsonb_build_object('new_ti_id', v_result.new_ti_id) END)::text);
    v_result.applied := true;
    RETURN v_result;
END
$function$;

COMMENT ON FUNCTION tistate.ti_mark(p_ti_id uuid, p_state text, p_reason text, p_now timestamp with time zone, p_lock_timeout interval) IS 'Operator override from any state to any state (NULL or ''none'' for no state), audited in log as ''mark <state>'' with the reason and previous state; clearing a try that ran (to none, scheduled or queued) archives it and gives the next try a new id (new_ti_id); no asset events; TS422/TS404/TS410';
