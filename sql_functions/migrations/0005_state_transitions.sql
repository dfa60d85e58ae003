-- ti_update_state for every payload type besides success: failed (with fail-fast), skipped,
-- removed, upstream_failed, up_for_retry (history row and a new uuid7 id), up_for_reschedule
-- (task_reschedule row), deferred (trigger row), and a clear TS409 for the scheduler-only targets
-- scheduled, queued and restarting. Replaces the dispatchers of 0004; see docs/semantics.md.

------------------------------------------------------------------------------------------------
-- Payload validation (TS422, before any lock)
------------------------------------------------------------------------------------------------
CREATE FUNCTION tistate._number(p_value jsonb, p_path text)
RETURNS double precision
LANGUAGE plpgsql
IMMUTABLE
AS $$
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) <> 'number' THEN
        PERFORM tistate._invalid(p_path, 'must be a number');
    END IF;
    RETURN (p_value #>> '{}')::double precision;
END
$$;
COMMENT ON FUNCTION tistate._number(jsonb, text) IS 'A JSON number (or null) as double precision, else TS422';

CREATE FUNCTION tistate._duration_seconds(p_value jsonb, p_path text)
RETURNS double precision
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    v_text    text;
    v_m       text[];
    v_seconds double precision;
BEGIN
    -- pydantic's timedelta input: a number of seconds, or an ISO 8601 duration
    -- ([-]P[nY][nM][nW][nD][T[nH][nM][nS]], a year = 365 days and a month = 30 days, as pydantic).
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) = 'number' THEN
        v_seconds := (p_value #>> '{}')::double precision;
    ELSIF jsonb_typeof(p_value) = 'string' THEN
        v_text := upper(p_value #>> '{}');
        v_m := regexp_match(v_text,
            '^([+-])?P(?=\d|T\d)(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?'
            '(?:T(?=\d)(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$');
        IF v_m IS NULL THEN
            PERFORM tistate._invalid(p_path, 'must be a number of seconds or an ISO 8601 duration');
        END IF;
        v_seconds := coalesce(v_m[2]::double precision, 0) * 365 * 86400
                   + coalesce(v_m[3]::double precision, 0) * 30 * 86400
                   + coalesce(v_m[4]::double precision, 0) * 7 * 86400
                   + coalesce(v_m[5]::double precision, 0) * 86400
                   + coalesce(v_m[6]::double precision, 0) * 3600
                   + coalesce(v_m[7]::double precision, 0) * 60
                   + coalesce(v_m[8]::double precision, 0);
        IF v_m[1] = '-' THEN
            v_seconds := -v_seconds;
        END IF;
    ELSE
        PERFORM tistate._invalid(p_path, 'must be a number of seconds or an ISO 8601 duration');
    END IF;
    -- Bounded so that p_now + duration can never overflow timestamptz.
    IF abs(v_seconds) > 100.0 * 365 * 86400 THEN
        PERFORM tistate._invalid(p_path, 'longer than 100 years');
    END IF;
    RETURN v_seconds;
END
$$;
COMMENT ON FUNCTION tistate._duration_seconds(jsonb, text) IS
    'A pydantic timedelta (seconds number or ISO 8601 duration string, at most 100 years) in seconds, else TS422';

-- Every normaliser returns {state, ...} with typed values; rendered_map_index only when sent.
CREATE FUNCTION tistate._with_rendered_map_index(p_result jsonb, p_payload jsonb)
RETURNS jsonb
LANGUAGE sql
IMMUTABLE
AS $$
    SELECT CASE WHEN p_payload ? 'rendered_map_index'
                THEN p_result || jsonb_build_object('rendered_map_index',
                         tistate._text(p_payload -> 'rendered_map_index', 'rendered_map_index', 250))
                ELSE p_result END;
$$;
COMMENT ON FUNCTION tistate._with_rendered_map_index(jsonb, jsonb) IS 'Add a validated rendered_map_index when the payload sent one';

CREATE FUNCTION tistate._normalize_terminal(p_payload jsonb)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
AS $$
BEGIN
    -- TITerminalStatePayload: failed, skipped, removed, upstream_failed.
    PERFORM tistate._check_object(p_payload, '', ARRAY['state', 'end_date', 'rendered_map_index'], ARRAY['end_date']);
    RETURN tistate._with_rendered_map_index(
        jsonb_build_object('state', p_payload ->> 'state',
                           'end_date', tistate._timestamp(p_payload -> 'end_date', 'end_date')),
        p_payload);
END
$$;
COMMENT ON FUNCTION tistate._normalize_terminal(jsonb) IS 'Validate (TS422) and normalise a TITerminalStatePayload';

CREATE FUNCTION tistate._normalize_retry(p_payload jsonb)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
AS $$
BEGIN
    -- TIRetryStatePayload. retry_reason is truncated to the column's 500 characters, as Airflow does.
    PERFORM tistate._check_object(p_payload, '',
        ARRAY['state', 'end_date', 'rendered_map_index', 'retry_delay_seconds', 'retry_reason'], ARRAY['end_date']);
    RETURN tistate._with_rendered_map_index(
        jsonb_build_object(
            'state', 'up_for_retry',
            'end_date', tistate._timestamp(p_payload -> 'end_date', 'end_date'),
            'retry_delay_seconds', tistate._number(p_payload -> 'retry_delay_seconds', 'retry_delay_seconds'),
            'retry_reason', left(tistate._text(p_payload -> 'retry_reason', 'retry_reason', 1000000), 500)),
        p_payload);
END
$$;
COMMENT ON FUNCTION tistate._normalize_retry(jsonb) IS 'Validate (TS422) and normalise a TIRetryStatePayload';

CREATE FUNCTION tistate._normalize_reschedule(p_payload jsonb)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
AS $$
BEGIN
    -- TIRescheduleStatePayload.
    PERFORM tistate._check_object(p_payload, '', ARRAY['state', 'reschedule_date', 'end_date'],
                                  ARRAY['reschedule_date', 'end_date']);
    RETURN jsonb_build_object(
        'state', 'up_for_reschedule',
        'reschedule_date', tistate._timestamp(p_payload -> 'reschedule_date', 'reschedule_date'),
        'end_date', tistate._timestamp(p_payload -> 'end_date', 'end_date'));
END
$$;
COMMENT ON FUNCTION tistate._normalize_reschedule(jsonb) IS 'Validate (TS422) and normalise a TIRescheduleStatePayload';

CREATE FUNCTION tistate._normalize_deferred(p_payload jsonb)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_kwargs text;
BEGIN
    -- TIDeferredStatePayload. trigger_kwargs is stored as the text the client sent when it sent a
    -- string (Airflow stores it as received), else as the JSON text of the object.
    PERFORM tistate._check_object(p_payload, '',
        ARRAY['state', 'classpath', 'next_method', 'trigger_kwargs', 'trigger_timeout', 'queue', 'next_kwargs',
              'rendered_map_index'],
        ARRAY['classpath', 'next_method']);
    IF jsonb_typeof(p_payload -> 'trigger_kwargs') = 'string' THEN
        v_kwargs := p_payload ->> 'trigger_kwargs';
    ELSE
        v_kwargs := tistate._json_object(p_payload -> 'trigger_kwargs', 'trigger_kwargs')::text;
    END IF;
    -- rendered_map_index is validated but not stored, as in Airflow.
    PERFORM tistate._text(p_payload -> 'rendered_map_index', 'rendered_map_index', 250);
    RETURN jsonb_build_object(
        'state', 'deferred',
        'classpath', tistate._text(p_payload -> 'classpath', 'classpath', 1000, false),
        'next_method', tistate._text(p_payload -> 'next_method', 'next_method', 1000, false),
        'trigger_kwargs', v_kwargs,
        'trigger_timeout_seconds', tistate._duration_seconds(p_payload -> 'trigger_timeout', 'trigger_timeout'),
        'queue', tistate._text(p_payload -> 'queue', 'queue', 256),
        'next_kwargs', tistate._json_object(p_payload -> 'next_kwargs', 'next_kwargs'));
END
$$;
COMMENT ON FUNCTION tistate._normalize_deferred(jsonb) IS 'Validate (TS422) and normalise a TIDeferredStatePayload';

CREATE OR REPLACE FUNCTION tistate._normalize_state_payload(p_payload jsonb)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_state text := tistate._payload_state(p_payload);
BEGIN
    CASE
        WHEN v_state = 'success' THEN
            RETURN tistate._normalize_success(p_payload);
        WHEN v_state IN ('failed', 'skipped', 'removed', 'upstream_failed') THEN
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
$$;
COMMENT ON FUNCTION tistate._normalize_state_payload(jsonb) IS 'Validate and normalise any TIStateUpdate payload (TS422)';

------------------------------------------------------------------------------------------------
-- Transitions
------------------------------------------------------------------------------------------------
CREATE FUNCTION tistate._applied(p_ctx tistate._ti_context, p_new_state text, p_new_ti_id uuid DEFAULT NULL)
RETURNS tistate.state_update_result
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    v_result tistate.state_update_result;
BEGIN
    v_result.ti_id := (p_ctx.ti).id;
    v_result.previous_state := (p_ctx.ti).state;
    v_result.new_state := p_new_state;
    v_result.applied := true;
    v_result.new_ti_id := p_new_ti_id;
    v_result.asset_event_ids := '{}';
    v_result.queued_dag_ids := '{}';
    RETURN v_result;
END
$$;
COMMENT ON FUNCTION tistate._applied(tistate._ti_context, text, uuid) IS 'The result of an applied transition without asset events';

CREATE FUNCTION tistate._fail_fast(p_ctx tistate._ti_context, p_now timestamptz)
RETURNS integer
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_count integer;
BEGIN
    -- Airflow's _stop_remaining_tasks, in the caller's transaction (Airflow commits mid-request):
    -- the run's other unfinished, non-teardown task instances (other tasks than the failed one)
    -- become failed when running, else skipped, each with a log row. Rows are locked by id, so two
    -- failing tasks of one run lock their siblings in the same order and cannot deadlock.
    PERFORM 1
    FROM tistate.task_instance AS ti
    LEFT JOIN tistate.dag_task AS t ON t.dag_id = ti.dag_id AND t.task_id = ti.task_id
    WHERE ti.dag_id = (p_ctx.ti).dag_id AND ti.run_id = (p_ctx.ti).run_id
      AND ti.task_id <> (p_ctx.ti).task_id
      AND (ti.state IS NULL OR ti.state NOT IN ('success', 'failed', 'skipped', 'upstream_failed', 'removed'))
      AND NOT coalesce(t.is_teardown, false)
    ORDER BY ti.id
    FOR UPDATE OF ti;

    WITH changed AS (
        UPDATE tistate.task_instance AS ti SET
            state = CASE WHEN ti.state = 'running' THEN 'failed' ELSE 'skipped' END,
            start_date = coalesce(ti.start_date, p_now),
            end_date = p_now,
            duration = extract(epoch FROM p_now - coalesce(ti.start_date, p_now)),
            next_method = NULL,
            next_kwargs = NULL,
            updated_at = p_now
        FROM tistate.task_instance AS old
        LEFT JOIN tistate.dag_task AS t ON t.dag_id = old.dag_id AND t.task_id = old.task_id
        WHERE old.id = ti.id
          AND old.dag_id = (p_ctx.ti).dag_id AND old.run_id = (p_ctx.ti).run_id
          AND old.task_id <> (p_ctx.ti).task_id
          AND (old.state IS NULL OR old.state NOT IN ('success', 'failed', 'skipped', 'upstream_failed', 'removed'))
          AND NOT coalesce(t.is_teardown, false)
        RETURNING ti.id, ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number, ti.state, old.state AS old_state
    ),
    logged AS (
        INSERT INTO tistate.log (dttm, dag_id, task_id, run_id, map_index, try_number, event, logical_date, owner, extra)
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
$$;
COMMENT ON FUNCTION tistate._fail_fast(tistate._ti_context, timestamptz) IS
    'Fail-fast: the run''s other unfinished non-teardown TIs -> failed (running) or skipped, with log rows; same transaction; returns the count';

CREATE FUNCTION tistate._apply_terminal(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamptz)
RETURNS tistate.state_update_result
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_state    text := p_payload ->> 'state';
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
BEGIN
    UPDATE tistate.task_instance AS ti SET
        state = v_state,
        end_date = v_end_date,
        duration = extract(epoch FROM v_end_date - ti.start_date),
        next_method = NULL,
        next_kwargs = NULL,
        rendered_map_index = CASE WHEN p_payload ? 'rendered_map_index'
                                  THEN p_payload ->> 'rendered_map_index' ELSE ti.rendered_map_index END,
        updated_at = p_now
    WHERE ti.id = (p_ctx.ti).id;
    PERFORM tistate._audit(p_ctx, v_state, p_now);
    IF v_state = 'failed' AND p_ctx.fail_fast THEN
        PERFORM tistate._fail_fast(p_ctx, p_now);
    END IF;
    RETURN tistate._applied(p_ctx, v_state);
END
$$;
COMMENT ON FUNCTION tistate._apply_terminal(tistate._ti_context, jsonb, timestamptz) IS
    'running -> failed (with fail-fast when the DAG sets it), skipped, removed or upstream_failed';

CREATE FUNCTION tistate._apply_retry(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamptz)
RETURNS tistate.state_update_result
LANGUAGE plpgsql
VOLATILE
AS $$
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
$$;
COMMENT ON FUNCTION tistate._apply_retry(tistate._ti_context, jsonb, timestamptz) IS
    'running -> up_for_retry: history row for the finished try (idempotent per try), reschedule rows deleted, retry fields, new uuid7 id';

CREATE FUNCTION tistate._apply_reschedule(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamptz)
RETURNS tistate.state_update_result
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
    v_start    timestamptz := coalesce((p_ctx.ti).start_date, p_now);
BEGIN
    -- start_date is the poke's real start (task_instance.start_date), not the server's now as in
    -- Airflow, so duration is the poke's length in whole seconds, not 0 or negative.
    IF abs(extract(epoch FROM v_end_date - v_start)) > 2147483647 THEN
        PERFORM tistate._invalid('end_date', 'more than 68 years away from the try''s start_date');
    END IF;
    INSERT INTO tistate.task_reschedule (ti_id, start_date, end_date, duration, reschedule_date)
    VALUES ((p_ctx.ti).id, v_start, v_end_date, trunc(extract(epoch FROM v_end_date - v_start))::integer,
            (p_payload ->> 'reschedule_date')::timestamptz);

    UPDATE tistate.task_instance AS ti SET
        state = 'up_for_reschedule',
        end_date = v_end_date,
        duration = extract(epoch FROM v_end_date - ti.start_date),
        next_method = NULL,
        next_kwargs = NULL,
        updated_at = p_now
    WHERE ti.id = (p_ctx.ti).id;

    PERFORM tistate._audit(p_ctx, 'up_for_reschedule', p_now);
    RETURN tistate._applied(p_ctx, 'up_for_reschedule');
END
$$;
COMMENT ON FUNCTION tistate._apply_reschedule(tistate._ti_context, jsonb, timestamptz) IS
    'running -> up_for_reschedule with its task_reschedule row (start_date = the poke''s start)';

CREATE FUNCTION tistate._apply_deferred(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamptz)
RETURNS tistate.state_update_result
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_trigger_id integer;
    v_seconds    double precision := (p_payload ->> 'trigger_timeout_seconds')::double precision;
BEGIN
    INSERT INTO tistate.trigger (classpath, kwargs, created_date, queue)
    VALUES (p_payload ->> 'classpath', p_payload ->> 'trigger_kwargs', p_now, p_payload ->> 'queue')
    RETURNING id INTO v_trigger_id;

    -- end_date, duration and rendered_map_index are left alone, as in Airflow.
    UPDATE tistate.task_instance AS ti SET
        state = 'deferred',
        trigger_id = v_trigger_id,
        next_method = p_payload ->> 'next_method',
        next_kwargs = p_payload -> 'next_kwargs',
        trigger_timeout = p_now + make_interval(secs => v_seconds),
        updated_at = p_now
    WHERE ti.id = (p_ctx.ti).id;

    PERFORM tistate._audit(p_ctx, 'deferred', p_now);
    RETURN tistate._applied(p_ctx, 'deferred');
END
$$;
COMMENT ON FUNCTION tistate._apply_deferred(tistate._ti_context, jsonb, timestamptz) IS
    'running -> deferred with its trigger row, next_method, next_kwargs and trigger_timeout = p_now + duration';

CREATE OR REPLACE FUNCTION tistate._apply_state(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamptz)
RETURNS tistate.state_update_result
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_state   text := p_payload ->> 'state';
    v_message text;
BEGIN
    CASE
        WHEN v_state = 'success' THEN
            RETURN tistate._apply_success(p_ctx, p_payload, p_now);
        WHEN v_state IN ('failed', 'skipped', 'removed', 'upstream_failed') THEN
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
$$;
COMMENT ON FUNCTION tistate._apply_state(tistate._ti_context, jsonb, timestamptz) IS
    'Dispatch a validated payload to its transition; TS409 for the scheduler-only targets scheduled, queued, restarting';

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA tistate FROM PUBLIC;
