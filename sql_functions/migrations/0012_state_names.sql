-- Task-instance states, named once: the type tistate.ti_state lists Airflow's TaskInstanceState
-- values (task_instance.state itself stays Airflow's varchar), and the groups the transitions use
-- are functions inlined by the planner (db_tests/states.sql checks that they name only states). They replace the literal lists of
-- state names that 0005 and 0006 repeated.
SELECT set_config('search_path', tistate._function_search_path(), true);

CREATE TYPE tistate.ti_state AS ENUM (
    'scheduled', 'queued', 'running', 'success', 'failed', 'skipped', 'upstream_failed', 'removed',
    'up_for_retry', 'up_for_reschedule', 'deferred', 'restarting');

COMMENT ON TYPE tistate.ti_state IS 'The task-instance states (Airflow''s TaskInstanceState); NULL, shown as none, is no state';

CREATE FUNCTION tistate._states()
 RETURNS text[]
 LANGUAGE sql
 STABLE
AS $function$
    SELECT enum_range(NULL::tistate.ti_state)::text[]
$function$;

COMMENT ON FUNCTION tistate._states() IS 'Every task-instance state name (tistate.ti_state)';

CREATE FUNCTION tistate._finished_states()
 RETURNS text[]
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- Airflow's State.finished: the try is over and will not run again by itself.
    SELECT ARRAY['success', 'failed', 'skipped', 'upstream_failed', 'removed']
$function$;

COMMENT ON FUNCTION tistate._finished_states() IS 'The finished states: success, failed, skipped, upstream_failed, removed';

CREATE FUNCTION tistate._terminal_payload_states()
 RETURNS text[]
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- TITerminalStatePayload: the finished states a worker reports without asset events.
    SELECT array_remove(tistate._finished_states(), 'success')
$function$;

COMMENT ON FUNCTION tistate._terminal_payload_states() IS 'The states of a TITerminalStatePayload: the finished states but success';


CREATE OR REPLACE FUNCTION tistate._payload_state(p_payload jsonb)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_state text;
BEGIN
    IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN
        PERFORM tistate._invalid('', 'the payload must be a JSON object');
    END IF;
    v_state := tistate._text(p_payload -> 'state', 'state', 20, false);
    -- Any state but running (a worker moves its try out of running).
    IF v_state = 'running' OR v_state <> ALL (tistate._states()) THEN
        PERFORM tistate._invalid('state', format('%s is not a state a task instance can be updated to', v_state));
    END IF;
    RETURN v_state;
END
$function$;

CREATE OR REPLACE FUNCTION tistate._normalize_state_payload(p_payload jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_state text;
BEGIN
    -- The usual payload first, without the generic state check; every other state below.
    IF jsonb_typeof(p_payload) = 'object' AND p_payload -> 'state' = '"success"'::jsonb THEN
        RETURN tistate._normalize_success(p_payload);
    END IF;
    v_state := tistate._payload_state(p_payload);
    CASE
        WHEN v_state = ANY (tistate._terminal_payload_states()) THEN
            RETURN tistate._normalize_terminal(p_payload);
        WHEN v_state = 'up_for_retry' THEN
            RETURN tistate._normalize_retry(p_payload);
        WHEN v_state = 'up_for_reschedule' THEN
            RETURN tistate._normalize_reschedule(p_payload);
        WHEN v_state = 'deferred' THEN
            RETURN tistate._normalize_deferred(p_payload);
        ELSE
            -- scheduled, queued, restarting: TITargetStatePayload, the state alone. Valid as a
            -- payload (so the same-state no-op still answers), refused by _apply_state with TS409.
            PERFORM tistate._check_object(p_payload, '', ARRAY['state']);
            RETURN jsonb_build_object('state', v_state);
    END CASE;
END
$function$;

CREATE OR REPLACE FUNCTION tistate._apply_state(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_state   text := p_payload ->> 'state';
    v_message text;
BEGIN
    CASE
        WHEN v_state = 'success' THEN
            RETURN tistate._apply_success(p_ctx, p_payload, p_now);
        WHEN v_state = ANY (tistate._terminal_payload_states()) THEN
            RETURN tistate._apply_terminal(p_ctx, p_payload, p_now);
        WHEN v_state = 'up_for_retry' THEN
            RETURN tistate._apply_retry(p_ctx, p_payload, p_now);
        WHEN v_state = 'up_for_reschedule' THEN
            RETURN tistate._apply_reschedule(p_ctx, p_payload, p_now);
        WHEN v_state = 'deferred' THEN
            RETURN tistate._apply_deferred(p_ctx, p_payload, p_now);
        ELSE
            -- scheduled, queued, restarting: the scheduler's states, not a worker's outcome. Airflow
            -- records FAILED and answers 204; tistate changes nothing and says so.
            v_message := format('a running task instance cannot be moved to %s by a state update; '
                                'report its outcome, or use ti_mark / ti_queue', v_state);
            PERFORM tistate._raise('TS409', v_message,
                jsonb_build_object('reason', 'unsupported_transition', 'message', v_message,
                                   'previous_state', (p_ctx.ti).state, 'requested_state', v_state));
            RETURN NULL;
    END CASE;
END
$function$;

CREATE OR REPLACE FUNCTION tistate._fail_fast(p_ctx tistate._ti_context, p_now timestamp with time zone)
 RETURNS integer
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_count    integer;
    v_teardown text[] := ARRAY(SELECT t.task_id FROM tistate._dag_tasks((p_ctx.ti).dag_id, (p_ctx.ti).run_id) AS t
                               WHERE t.is_teardown);
BEGIN
    -- Airflow's _stop_remaining_tasks, in the caller's transaction (Airflow commits mid-request):
    -- the run's other unfinished, non-teardown task instances (other tasks than the failed one)
    -- become failed when running, else skipped, each with a log row. Rows are locked by id, so two
    -- failing tasks of one run lock their siblings in the same order and cannot deadlock.
    PERFORM 1
    FROM task_instance AS ti
    WHERE ti.dag_id = (p_ctx.ti).dag_id AND ti.run_id = (p_ctx.ti).run_id
      AND ti.task_id <> (p_ctx.ti).task_id
      AND (ti.state IS NULL OR ti.state <> ALL (tistate._finished_states()))
      AND ti.task_id <> ALL (v_teardown)
    ORDER BY ti.id
    FOR UPDATE OF ti;

    WITH changed AS (
        UPDATE task_instance AS ti SET
            state = CASE WHEN ti.state = 'running' THEN 'failed' ELSE 'skipped' END,
            start_date = coalesce(ti.start_date, p_now),
            end_date = p_now,
            duration = extract(epoch FROM p_now - coalesce(ti.start_date, p_now)),
            next_method = NULL,
            next_kwargs = NULL,
            updated_at = p_now
        FROM task_instance AS old
        WHERE old.id = ti.id
          AND old.dag_id = (p_ctx.ti).dag_id AND old.run_id = (p_ctx.ti).run_id
          AND old.task_id <> (p_ctx.ti).task_id
          AND (old.state IS NULL OR old.state <> ALL (tistate._finished_states()))
          AND old.task_id <> ALL (v_teardown)
        RETURNING ti.id, ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number, ti.state, old.state AS old_state
    ),
    logged AS (
        INSERT INTO log (dttm, dag_id, task_id, run_id, map_index, try_number, event, logical_date, owner, extra)
        SELECT p_now, c.dag_id, c.task_id, c.run_id, c.map_index, c.try_number,
               CASE WHEN c.state = 'failed' THEN 'fail task' ELSE 'skip task' END,
               p_ctx.logical_date, p_ctx.owners,
               jsonb_build_object(
                   'message', CASE WHEN c.state = 'failed'
                                   THEN 'Forcing task to fail due to dag''s fail_fast setting.'
                                   ELSE 'Skipping task due to dag''s fail_fast setting.' END,
                   'previous_state', c.old_state,
                   'failed_task_id', (p_ctx.ti).task_id,
                   'failed_map_index', (p_ctx.ti).map_index)::text
        FROM changed AS c
        ORDER BY c.id
        RETURNING 1
    )
    SELECT count(*) INTO v_count FROM logged;
    RETURN v_count;
END
$function$;

CREATE OR REPLACE FUNCTION tistate.ti_mark(p_ti_id uuid, p_state text, p_reason text, p_now timestamp with time zone DEFAULT clock_timestamp(), p_lock_timeout interval DEFAULT NULL::interval)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
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

SELECT tistate._settle_privileges();
