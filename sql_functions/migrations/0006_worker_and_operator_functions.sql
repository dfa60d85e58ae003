SELECT set_config('search_path', tistate._function_search_path(), true);

CREATE FUNCTION tistate.ti_heartbeat(p_ti_id uuid, p_hostname text, p_pid integer, p_now timestamp with time zone DEFAULT clock_timestamp(), p_lock_timeout interval DEFAULT NULL::interval)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET lock_timeout TO '2s'
AS $function$
DECLARE
    v_state    text;
    v_hostname text;
    v_pid      integer;
    v_message  text;
BEGIN
    p_now := tistate._caller_now(p_now);  -- a worker uses the database clock (docs/dba.md)
    IF p_hostname IS NULL THEN
        PERFORM tistate._invalid('hostname', 'field required');
    END IF;
    IF p_pid IS NULL THEN
        PERFORM tistate._invalid('pid', 'field required');
    END IF;
    PERFORM tistate._set_lock_timeout(p_lock_timeout);

    -- Fast path: one conditional UPDATE. Its row lock wait is bounded by lock_timeout (55P03).
    UPDATE task_instance AS ti SET last_heartbeat_at = p_now, updated_at = p_now
    WHERE ti.id = p_ti_id AND ti.state = 'running' AND ti.hostname = p_hostname AND ti.pid = p_pid;
    IF FOUND THEN
        RETURN;
    END IF;

    -- Slow path: explain why.
    SELECT ti.state, ti.hostname, ti.pid INTO v_state, v_hostname, v_pid
    FROM task_instance AS ti WHERE ti.id = p_ti_id
    FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tistate._raise_missing_ti(p_ti_id);
    END IF;
    IF v_hostname IS DISTINCT FROM p_hostname OR v_pid IS DISTINCT FROM p_pid THEN
        v_message := 'TI is already running elsewhere';
        PERFORM tistate._raise('TS409', v_message,
            jsonb_build_object('reason', 'running_elsewhere', 'message', v_message, 'current_hostname', v_hostname,
                               'current_pid', v_pid, 'previous_state', v_state));
    END IF;
    IF v_state IS DISTINCT FROM 'running' THEN
        v_message := 'TI is no longer in the running state and task should terminate';
        PERFORM tistate._raise('TS409', v_message,
            jsonb_build_object('reason', 'not_running', 'message', v_message, 'current_state', v_state,
                               'previous_state', v_state));
    END IF;
    -- Reached only if the row changed between the two statements and now matches.
    UPDATE task_instance AS ti SET last_heartbeat_at = p_now, updated_at = p_now WHERE ti.id = p_ti_id;
END
$function$;

COMMENT ON FUNCTION tistate.ti_heartbeat(p_ti_id uuid, p_hostname text, p_pid integer, p_now timestamp with time zone, p_lock_timeout interval) IS 'Heartbeat of a running try: one conditional UPDATE; else TS404 / TS410 / TS409 (running_elsewhere with current_hostname and current_pid, or not_running with current_state); lock wait bounded (55P03)';

CREATE FUNCTION tistate.ti_queue(p_ti_id uuid, p_now timestamp with time zone DEFAULT clock_timestamp(), p_lock_timeout interval DEFAULT NULL::interval)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
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

CREATE FUNCTION tistate._skip_targets(p_tasks jsonb)
 RETURNS TABLE(task_id text, map_index integer)
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_i    integer;
    v_item jsonb;
    v_path text;
BEGIN
    -- Airflow's TISkippedDownstreamTasksStatePayload.tasks: task ids (map_index -1) or
    -- [task_id, map_index] pairs.
    IF p_tasks IS NULL OR jsonb_typeof(p_tasks) <> 'array' THEN
        PERFORM tistate._invalid('tasks', 'must be a JSON array');
    END IF;
    FOR v_i IN 0 .. jsonb_array_length(p_tasks) - 1 LOOP
        v_path := format('tasks[%s]', v_i);
        v_item := p_tasks -> v_i;
        IF jsonb_typeof(v_item) = 'string' THEN
            task_id := tistate._text(v_item, v_path, 250, false);
            map_index := -1;
        ELSIF jsonb_typeof(v_item) = 'array' AND jsonb_array_length(v_item) = 2 THEN
            task_id := tistate._text(v_item -> 0, v_path || '[0]', 250, false);
            map_index := tistate._integer(v_item -> 1, v_path || '[1]');
        ELSE
            PERFORM tistate._invalid(v_path, 'must be a task id or a [task_id, map_index] pair');
        END IF;
        IF task_id = '' THEN
            PERFORM tistate._invalid(v_path, 'task id must not be empty');
        END IF;
        RETURN NEXT;
    END LOOP;
END
$function$;

COMMENT ON FUNCTION tistate._skip_targets(p_tasks jsonb) IS 'Validate a skip-downstream task list (TS422) into (task_id, map_index) rows';

CREATE FUNCTION tistate.ti_skip_downstream(p_ti_id uuid, p_tasks jsonb, p_now timestamp with time zone DEFAULT clock_timestamp())
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET lock_timeout TO '2s'
AS $function$
DECLARE
    v_targets jsonb;
    v_caller  task_instance;
    v_owners  text;
    v_logical timestamptz;
    v_count   integer;
BEGIN
    p_now := tistate._caller_now(p_now);  -- a worker uses the database clock (docs/dba.md)
    SELECT coalesce(jsonb_agg(DISTINCT jsonb_build_array(t.task_id, t.map_index)), '[]') INTO v_targets
    FROM tistate._skip_targets(p_tasks) AS t;
    PERFORM tistate._set_lock_timeout(NULL);

    -- The caller's row is read, not locked (as in Airflow).
    SELECT ti.* INTO v_caller FROM task_instance AS ti WHERE ti.id = p_ti_id;
    IF NOT FOUND THEN
        PERFORM tistate._raise_missing_ti(p_ti_id);
    END IF;
    SELECT d.owners, dr.logical_date INTO v_owners, v_logical
    FROM dag_run AS dr JOIN dag AS d ON d.dag_id = dr.dag_id
    WHERE dr.dag_id = v_caller.dag_id AND dr.run_id = v_caller.run_id;

    -- Lock the targets in id order (deterministic, so no deadlock with fail-fast or another skip).
    PERFORM 1
    FROM task_instance AS ti
    JOIN jsonb_array_elements(v_targets) AS t ON ti.task_id = t ->> 0 AND ti.map_index = (t ->> 1)::integer
    WHERE ti.dag_id = v_caller.dag_id AND ti.run_id = v_caller.run_id
      AND (ti.state IS NULL OR ti.state NOT IN ('running', 'success', 'failed'))
    ORDER BY ti.id
    FOR UPDATE OF ti;

    WITH changed AS (
        UPDATE task_instance AS ti SET
            state = 'skipped', start_date = p_now, end_date = p_now, updated_at = p_now
        FROM task_instance AS old
        JOIN jsonb_array_elements(v_targets) AS t ON old.task_id = t ->> 0 AND old.map_index = (t ->> 1)::integer
        WHERE old.id = ti.id AND old.dag_id = v_caller.dag_id AND old.run_id = v_caller.run_id
          AND (old.state IS NULL OR old.state NOT IN ('running', 'success', 'failed'))
        RETURNING ti.id, ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number, old.state AS old_state
    ),
    logged AS (
        INSERT INTO log (dttm, dag_id, task_id, run_id, map_index, try_number, event, logical_date, owner, extra)
        SELECT p_now, c.dag_id, c.task_id, c.run_id, c.map_index, c.try_number, 'skipped', v_logical, v_owners,
               jsonb_build_object('reason', 'skip_downstream', 'previous_state', c.old_state,
                                  'skipped_by_task_id', v_caller.task_id,
                                  'skipped_by_map_index', v_caller.map_index)::text
        FROM changed AS c
        ORDER BY c.id
        RETURNING 1
    )
    SELECT count(*) INTO v_count FROM logged;
    RETURN v_count;
END
$function$;

COMMENT ON FUNCTION tistate.ti_skip_downstream(p_ti_id uuid, p_tasks jsonb, p_now timestamp with time zone) IS 'The skip-downstream PATCH: p_tasks is a list of task ids or [task_id, map_index] pairs of the caller''s run; skips those not running/success/failed; returns the count; TS404/TS410/TS422';

CREATE FUNCTION tistate.ti_mark(p_ti_id uuid, p_state text, p_reason text, p_now timestamp with time zone DEFAULT clock_timestamp(), p_lock_timeout interval DEFAULT NULL::interval)
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
    IF v_state IS NOT NULL AND v_state NOT IN (
            'success', 'failed', 'skipped', 'upstream_failed', 'removed', 'running', 'scheduled', 'queued',
            'restarting', 'up_for_retry', 'up_for_reschedule', 'deferred') THEN
        PERFORM tistate._invalid('state', format('%s is not a task instance state', v_state));
    END IF;
    IF p_reason IS NULL OR btrim(p_reason) = '' THEN
        PERFORM tistate._invalid('reason', 'an operator override needs a reason');
    END IF;
    IF length(p_reason) > 2000 THEN
        PERFORM tistate._invalid('reason', 'longer than 2000 characters');
    END IF;
    v_finished := v_state IN ('success', 'failed', 'skipped', 'upstream_failed', 'removed', 'up_for_retry');

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
       AND (v_ctx.ti).state IN ('success', 'failed', 'skipped', 'upstream_failed', 'removed', 'running', 'restarting') THEN
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

CREATE FUNCTION tistate.emit_asset_event(p_name text, p_uri text, p_extra jsonb, p_partition_key text DEFAULT NULL::text, p_now timestamp with time zone DEFAULT clock_timestamp())
 RETURNS tistate.asset_event_result
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET lock_timeout TO '2s'
AS $function$
DECLARE
    v_name     text := tistate._asset_name(to_jsonb(p_name), 'name', true);
    v_uri      text := tistate._check_uri(tistate._text(to_jsonb(p_uri), 'uri', 1500), 'uri');
    v_extra    jsonb := tistate._json_object(p_extra, 'extra');
    v_key      text := tistate._partition_key(to_jsonb(p_partition_key), 'partition_key');
    v_asset_id integer;
    v_events   tistate._planned_event[];
    v_result   tistate.asset_event_result;
    v_stamp    timestamptz := p_now;
BEGIN
    IF v_name IS NULL AND v_uri IS NULL THEN
        PERFORM tistate._invalid('name', 'name or uri is required');
    END IF;
    PERFORM tistate._set_lock_timeout(NULL);
    -- An active asset, by name and uri, or by either alone (each is unique among active assets).
    SELECT a.id INTO v_asset_id
    FROM asset_active AS act
    JOIN asset AS a ON a.name = act.name AND a.uri = act.uri
    WHERE (v_name IS NULL OR act.name = v_name) AND (v_uri IS NULL OR act.uri = v_uri);
    IF NOT FOUND THEN
        PERFORM tistate._raise('TS404', format('no active asset with name %s and uri %s',
                                               coalesce(v_name, '(any)'), coalesce(v_uri, '(any)')),
                               jsonb_build_object('reason', 'not_found', 'name', v_name, 'uri', v_uri),
                               'an asset becomes active when a DAG names it: tistate dag define FILE; tistate asset list shows the known assets');
    END IF;
    IF tistate._is_airflow() THEN
        -- As a task's events: consumers share-locked, then stamped (tistate._lock_consumers).
        v_stamp := tistate._lock_consumers(
            jsonb_build_array(jsonb_build_object('type', 'Asset', 'name', v_name, 'uri', v_uri)), '[]', p_now);
    END IF;

    v_events := ARRAY[ROW(nextval('asset_event_id_seq')::integer, v_asset_id, v_extra, v_key,
                          '{}'::integer[])::tistate._planned_event];
    -- A manual event has no producing task: source_* and ti_id stay NULL, as for Airflow's API events.
    INSERT INTO asset_event (id, asset_id, extra, "timestamp", partition_key)
    SELECT e.event_id, e.asset_id, e.extra, v_stamp, e.partition_key FROM unnest(v_events) AS e;

    v_result.asset_event_id := v_events[1].event_id;
    v_result.asset_id := v_asset_id;
    v_result.queued_dag_ids := tistate._queue_consumers(v_events, v_stamp);
    PERFORM tistate._notify_events(v_events, NULL);
    RETURN v_result;
END
$function$;

COMMENT ON FUNCTION tistate.emit_asset_event(p_name text, p_uri text, p_extra jsonb, p_partition_key text, p_now timestamp with time zone) IS 'A manual (API-origin) event for an active asset: queues its consumers like a task''s event (none when it has a partition key) and notifies tistate_events; TS404 no such active asset; TS422';
