-- ti_run (queued/restarting -> running) and ti_update_state with the success transition:
-- validation before locking, one bounded row lock, set-based event registration, consumer queueing,
-- audit and notification, all in the caller's one transaction.

------------------------------------------------------------------------------------------------
-- ti_run
------------------------------------------------------------------------------------------------
CREATE FUNCTION tistate._run_context(p_ti_id uuid, p_previous_state text)
RETURNS jsonb
LANGUAGE sql
STABLE
AS $$
    -- Airflow's TIRunContext (Task SDK datamodels): what a worker needs to run the try.
    SELECT jsonb_build_object(
        'dag_run', jsonb_build_object(
            'dag_id', dr.dag_id, 'run_id', dr.run_id, 'logical_date', dr.logical_date,
            'data_interval_start', dr.logical_date, 'data_interval_end', dr.logical_date,
            'run_after', dr.run_after, 'start_date', dr.start_date, 'end_date', dr.end_date,
            'clear_number', dr.clear_number, 'run_type', dr.run_type, 'state', dr.state,
            'conf', coalesce(dr.conf, '{}'), 'consumed_asset_events', '[]'::jsonb,
            'partition_key', dr.partition_key, 'partition_date', dr.partition_date),
        'task_reschedule_count', (SELECT count(*) FROM tistate.task_reschedule AS r WHERE r.ti_id = ti.id),
        'max_tries', ti.max_tries,
        'variables', '[]'::jsonb,
        'connections', '[]'::jsonb,
        'xcom_keys_to_clear', '[]'::jsonb,
        'should_retry', p_previous_state = 'restarting' OR (ti.max_tries <> 0 AND ti.try_number <= ti.max_tries),
        'next_method', ti.next_method,
        'next_kwargs', CASE WHEN jsonb_typeof(ti.next_kwargs) = 'null' THEN NULL ELSE ti.next_kwargs END,
        'start_date', ti.start_date)
    FROM tistate.task_instance AS ti
    JOIN tistate.dag_run AS dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
    WHERE ti.id = p_ti_id;
$$;
COMMENT ON FUNCTION tistate._run_context(uuid, text) IS 'The TIRunContext document returned by ti_run';

CREATE FUNCTION tistate.ti_run(
    p_ti_id        uuid,
    p_payload      jsonb,
    p_now          timestamptz DEFAULT clock_timestamp(),
    p_lock_timeout interval DEFAULT NULL
)
RETURNS jsonb
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, tistate, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
    v_hostname   text;
    v_unixname   text;
    v_pid        integer;
    v_start_date timestamptz;
    v_ctx        tistate._ti_context;
    v_duplicate  boolean;
    v_resuming   boolean;
BEGIN
    -- TIEnterRunningPayload, validated before the lock.
    PERFORM tistate._check_object(p_payload, '', ARRAY['state', 'hostname', 'unixname', 'pid', 'start_date'],
                                  ARRAY['state', 'hostname', 'unixname', 'pid', 'start_date']);
    IF p_payload ->> 'state' IS DISTINCT FROM 'running' THEN
        PERFORM tistate._invalid('state', 'must be "running"');
    END IF;
    v_hostname := tistate._text(p_payload -> 'hostname', 'hostname', 1000, false);
    v_unixname := tistate._text(p_payload -> 'unixname', 'unixname', 1000, false);
    v_pid := tistate._integer(p_payload -> 'pid', 'pid');
    v_start_date := tistate._timestamp(p_payload -> 'start_date', 'start_date');

    v_ctx := tistate._lock_ti(p_ti_id, p_lock_timeout);
    -- coalesce: a NULL state (none) or NULL hostname/pid must not make the state check below NULL.
    v_duplicate := coalesce((v_ctx.ti).state = 'running' AND (v_ctx.ti).hostname = v_hostname
                            AND (v_ctx.ti).unixname = v_unixname AND (v_ctx.ti).pid = v_pid, false);
    IF NOT v_duplicate AND coalesce((v_ctx.ti).state, 'none') NOT IN ('queued', 'restarting') THEN
        PERFORM tistate._invalid_state(v_ctx, 'TI was not in a state where it could be marked as running');
    END IF;
    -- Resuming after a deferral keeps the try's original start_date.
    v_resuming := (v_ctx.ti).next_kwargs IS NOT NULL AND jsonb_typeof((v_ctx.ti).next_kwargs) = 'object'
                  AND (v_ctx.ti).next_kwargs <> '{}'::jsonb;

    UPDATE tistate.task_instance AS ti SET
        state = 'running',
        hostname = v_hostname,
        unixname = v_unixname,
        pid = v_pid,
        start_date = CASE WHEN v_resuming OR v_duplicate THEN ti.start_date ELSE v_start_date END,
        end_date = NULL,
        duration = NULL,
        last_heartbeat_at = p_now,
        retry_delay_override = NULL,
        retry_reason = NULL,
        updated_at = p_now
    WHERE ti.id = p_ti_id;

    IF NOT v_duplicate THEN
        PERFORM tistate._audit(v_ctx, 'running', p_now, jsonb_build_object('host_name', v_hostname)::text);
    END IF;
    RETURN tistate._run_context(p_ti_id, (v_ctx.ti).state);
END
$$;
COMMENT ON FUNCTION tistate.ti_run(uuid, jsonb, timestamptz, interval) IS
    'queued/restarting -> running (Airflow''s TIEnterRunningPayload); idempotent for the same hostname, unixname and pid; returns the TIRunContext; TS404/TS410/TS409/TS422';

------------------------------------------------------------------------------------------------
-- Success payload validation
------------------------------------------------------------------------------------------------
CREATE FUNCTION tistate._payload_state(p_payload jsonb)
RETURNS text
LANGUAGE plpgsql
IMMUTABLE
AS $$
DECLARE
    v_state text;
BEGIN
    IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN
        PERFORM tistate._invalid('', 'the payload must be a JSON object');
    END IF;
    v_state := tistate._text(p_payload -> 'state', 'state', 20, false);
    IF v_state NOT IN ('success', 'failed', 'skipped', 'removed', 'upstream_failed', 'up_for_retry',
                       'up_for_reschedule', 'deferred', 'scheduled', 'queued', 'restarting') THEN
        PERFORM tistate._invalid('state', format('%s is not a state a task instance can be updated to', v_state));
    END IF;
    RETURN v_state;
END
$$;
COMMENT ON FUNCTION tistate._payload_state(jsonb) IS 'The TIStateUpdate discriminator: a known target state, else TS422';

-- Normalised success payload: {state, end_date, rendered_map_index?, task_outlets: [{type,name,uri}],
-- outlet_events: [{alias, name, uri, asset_extra, extra, partition_key}]}.
CREATE FUNCTION tistate._normalize_success(p_payload jsonb)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_outlets jsonb := '[]';
    v_events  jsonb := '[]';
    v_event   jsonb;
    v_path    text;
    v_key     jsonb;
    v_i       integer;
    v_result  jsonb;
BEGIN
    PERFORM tistate._check_object(p_payload, '',
        ARRAY['state', 'end_date', 'task_outlets', 'outlet_events', 'rendered_map_index'], ARRAY['end_date']);
    v_result := jsonb_build_object('state', 'success',
                                   'end_date', tistate._timestamp(p_payload -> 'end_date', 'end_date'));
    IF p_payload ? 'rendered_map_index' THEN
        v_result := v_result || jsonb_build_object('rendered_map_index',
            tistate._text(p_payload -> 'rendered_map_index', 'rendered_map_index', 250));
    END IF;
    FOR v_i IN 0 .. jsonb_array_length(tistate._array(p_payload -> 'task_outlets', 'task_outlets')) - 1 LOOP
        v_outlets := v_outlets || tistate._asset_profile(p_payload -> 'task_outlets' -> v_i, format('task_outlets[%s]', v_i));
    END LOOP;
    FOR v_i IN 0 .. jsonb_array_length(tistate._array(p_payload -> 'outlet_events', 'outlet_events')) - 1 LOOP
        v_path := format('outlet_events[%s]', v_i);
        v_event := p_payload -> 'outlet_events' -> v_i;
        IF jsonb_typeof(v_event) = 'object' AND jsonb_typeof(v_event -> 'source_alias_name') IS DISTINCT FROM 'null'
           AND v_event ? 'source_alias_name' THEN
            PERFORM tistate._check_object(v_event, v_path,
                ARRAY['source_alias_name', 'dest_asset_key', 'dest_asset_extra', 'extra'],
                ARRAY['source_alias_name', 'dest_asset_key']);
            v_key := tistate._asset_key(v_event -> 'dest_asset_key', v_path || '.dest_asset_key');
            v_events := v_events || jsonb_build_object(
                'alias', tistate._asset_name(v_event -> 'source_alias_name', v_path || '.source_alias_name'),
                'name', v_key -> 'name', 'uri', v_key -> 'uri',
                'asset_extra', tistate._json_object(v_event -> 'dest_asset_extra', v_path || '.dest_asset_extra'),
                'extra', tistate._json_object(v_event -> 'extra', v_path || '.extra'),
                'partition_key', NULL);
        ELSE
            PERFORM tistate._check_object(v_event, v_path, ARRAY['dest_asset_key', 'extra', 'partition_key', 'source_alias_name'],
                                          ARRAY['dest_asset_key']);
            v_key := tistate._asset_key(v_event -> 'dest_asset_key', v_path || '.dest_asset_key');
            v_events := v_events || jsonb_build_object(
                'alias', NULL,
                'name', v_key -> 'name', 'uri', v_key -> 'uri',
                'asset_extra', '{}'::jsonb,
                'extra', tistate._json_object(v_event -> 'extra', v_path || '.extra'),
                'partition_key', tistate._partition_key(v_event -> 'partition_key', v_path || '.partition_key'));
        END IF;
    END LOOP;
    RETURN v_result || jsonb_build_object('task_outlets', v_outlets, 'outlet_events', v_events);
END
$$;
COMMENT ON FUNCTION tistate._normalize_success(jsonb) IS 'Validate (TS422) and normalise a TISuccessStatePayload';

------------------------------------------------------------------------------------------------
-- Event registration, shared by the success transition and manual events
------------------------------------------------------------------------------------------------
CREATE FUNCTION tistate._register_outlet_events(
    p_ctx     tistate._ti_context,
    p_outlets jsonb,
    p_events  jsonb,
    p_now     timestamptz
)
RETURNS tistate._planned_event[]
LANGUAGE plpgsql
VOLATILE
-- Plan once per session: custom plans would re-plan these large statements on every call.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_alias_events jsonb;
    v_planned      tistate._planned_event[];
BEGIN
    -- Events for outlets the task did not declare are ignored, as in Airflow; so with no outlets
    -- there is nothing to register.
    IF jsonb_array_length(p_outlets) = 0 THEN
        RETURN '{}';
    END IF;

    SELECT coalesce(jsonb_agg(e ORDER BY ord), '[]') INTO v_alias_events
    FROM jsonb_array_elements(p_events) WITH ORDINALITY AS x (e, ord)
    WHERE e ->> 'alias' IS NOT NULL
      AND p_outlets @> jsonb_build_array(jsonb_build_object('type', 'AssetAlias', 'name', e ->> 'alias'));

    IF jsonb_array_length(v_alias_events) > 0 THEN
        INSERT INTO tistate.asset_alias (name)
        SELECT DISTINCT e ->> 'alias' FROM jsonb_array_elements(v_alias_events) AS e
        ORDER BY 1
        ON CONFLICT (name) DO NOTHING;
        -- An asset first reached through an alias is created and activated here, as the DAG
        -- processor would on seeing it (one activeness rule for both paths: docs/semantics.md).
        WITH created AS (
            INSERT INTO tistate.asset AS a (name, uri, "group", extra, created_at, updated_at)
            SELECT DISTINCT ON (e ->> 'name', e ->> 'uri') e ->> 'name', e ->> 'uri', 'asset', e -> 'asset_extra', p_now, p_now
            FROM jsonb_array_elements(v_alias_events) AS e
            ORDER BY e ->> 'name', e ->> 'uri', (e -> 'asset_extra')::text
            ON CONFLICT (name, uri) DO NOTHING
            RETURNING a.name, a.uri
        )
        INSERT INTO tistate.asset_active (name, uri)
        SELECT c.name, c.uri FROM created AS c ORDER BY 1, 2
        ON CONFLICT DO NOTHING;
    END IF;

    WITH outlets AS (
        SELECT o ->> 'type' AS type, o ->> 'name' AS name, o ->> 'uri' AS uri
        FROM jsonb_array_elements(p_outlets) AS o
    ),
    -- Active assets the task declared. UNION deduplicates an asset listed as Asset, NameRef and
    -- UriRef, so it gets one event per payload, not three (a fix over Airflow).
    targets AS (
        SELECT a.id, a.name, a.uri FROM outlets AS o
        JOIN tistate.asset_active AS act ON act.name = o.name AND act.uri = o.uri
        JOIN tistate.asset AS a ON a.name = act.name AND a.uri = act.uri
        WHERE o.type = 'Asset'
        UNION
        SELECT a.id, a.name, a.uri FROM outlets AS o
        JOIN tistate.asset_active AS act ON act.name = o.name
        JOIN tistate.asset AS a ON a.name = act.name AND a.uri = act.uri
        WHERE o.type = 'AssetNameRef'
        UNION
        SELECT a.id, a.name, a.uri FROM outlets AS o
        JOIN tistate.asset_active AS act ON act.uri = o.uri
        JOIN tistate.asset AS a ON a.name = act.name AND a.uri = act.uri
        WHERE o.type = 'AssetUriRef'
    ),
    -- One event per payload sent for the asset, or one default event when none was sent.
    direct AS (
        SELECT t.id AS asset_id, coalesce(e.value -> 'extra', '{}'::jsonb) AS extra,
               coalesce(e.value ->> 'partition_key', (p_ctx).run_partition_key) AS partition_key,
               '{}'::integer[] AS alias_ids, 1 AS kind, coalesce(e.ordinality, 0) AS ord
        FROM targets AS t
        LEFT JOIN jsonb_array_elements(p_events) WITH ORDINALITY AS e
               ON e.value ->> 'alias' IS NULL AND e.value ->> 'name' = t.name AND e.value ->> 'uri' = t.uri
    ),
    -- Alias events: one per distinct (asset, asset extra, extra), linked to every alias that sent it.
    alias_groups AS (
        SELECT e ->> 'name' AS name, e ->> 'uri' AS uri, e -> 'extra' AS extra,
               array_agg(DISTINCT e ->> 'alias') AS aliases, min(ord) AS ord
        FROM jsonb_array_elements(v_alias_events) WITH ORDINALITY AS x (e, ord)
        GROUP BY e ->> 'name', e ->> 'uri', e -> 'asset_extra', e -> 'extra'
    ),
    via_alias AS (
        SELECT a.id AS asset_id, g.extra, (p_ctx).run_partition_key AS partition_key,
               ARRAY(SELECT al.id FROM tistate.asset_alias AS al WHERE al.name = ANY (g.aliases) ORDER BY al.id) AS alias_ids,
               2 AS kind, g.ord
        FROM alias_groups AS g
        JOIN tistate.asset AS a ON a.name = g.name AND a.uri = g.uri
        JOIN tistate.asset_active AS act ON act.name = a.name AND act.uri = a.uri
    ),
    planned AS (
        SELECT * FROM direct
        UNION ALL
        SELECT * FROM via_alias
        ORDER BY kind, asset_id, ord
    )
    SELECT array_agg(ROW(nextval('tistate.asset_event_id_seq')::integer, p.asset_id, p.extra,
                         p.partition_key, p.alias_ids)::tistate._planned_event)
    INTO v_planned
    FROM planned AS p;

    IF v_planned IS NULL THEN
        RETURN '{}';
    END IF;

    INSERT INTO tistate.asset_event (id, asset_id, extra, source_task_id, source_dag_id, source_run_id,
                                     source_map_index, "timestamp", partition_key, ti_id, try_number)
    SELECT e.event_id, e.asset_id, e.extra, (p_ctx.ti).task_id, (p_ctx.ti).dag_id, (p_ctx.ti).run_id,
           (p_ctx.ti).map_index, p_now, e.partition_key, (p_ctx.ti).id, (p_ctx.ti).try_number
    FROM unnest(v_planned) AS e
    ORDER BY e.event_id;

    INSERT INTO tistate.asset_alias_asset_event (alias_id, event_id)
    SELECT al.id, e.event_id
    FROM unnest(v_planned) AS e CROSS JOIN unnest(e.alias_ids) AS al (id)
    ORDER BY 1, 2;

    INSERT INTO tistate.asset_alias_asset (alias_id, asset_id)
    SELECT DISTINCT al.id, e.asset_id
    FROM unnest(v_planned) AS e CROSS JOIN unnest(e.alias_ids) AS al (id)
    ORDER BY 1, 2
    ON CONFLICT DO NOTHING;

    RETURN v_planned;
END
$$;
COMMENT ON FUNCTION tistate._register_outlet_events(tistate._ti_context, jsonb, jsonb, timestamptz) IS
    'Insert a success''s asset events, alias-event and alias-asset links set-based; cost independent of event history';

CREATE FUNCTION tistate._queue_consumers(p_events tistate._planned_event[], p_now timestamptz)
RETURNS text[]
LANGUAGE plpgsql
VOLATILE
-- Plan once per session: custom plans would re-plan these large statements on every call.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_dag_ids text[];
BEGIN
    -- Consumers: DAGs scheduled on the asset, on an alias that emitted the event, or on the
    -- asset's name or uri. Paused and stale DAGs are not queued; partition-aware DAGs and events
    -- with a partition key never go to asset_dag_run_queue (Airflow reference 4.6).
    -- Rows are inserted sorted by (asset_id, target_dag_id), so concurrent completions take the
    -- queue's key locks in the same order and cannot deadlock.
    WITH events AS (
        SELECT e.asset_id, e.alias_ids FROM unnest(p_events) AS e WHERE e.partition_key IS NULL
    ),
    consumers AS (
        SELECT e.asset_id, r.dag_id FROM events AS e
        JOIN tistate.dag_schedule_asset_reference AS r ON r.asset_id = e.asset_id
        UNION
        SELECT e.asset_id, r.dag_id FROM events AS e CROSS JOIN unnest(e.alias_ids) AS al (id)
        JOIN tistate.dag_schedule_asset_alias_reference AS r ON r.alias_id = al.id
        UNION
        SELECT e.asset_id, r.dag_id FROM events AS e
        JOIN tistate.asset AS a ON a.id = e.asset_id
        JOIN tistate.dag_schedule_asset_name_reference AS r ON r.name = a.name
        UNION
        SELECT e.asset_id, r.dag_id FROM events AS e
        JOIN tistate.asset AS a ON a.id = e.asset_id
        JOIN tistate.dag_schedule_asset_uri_reference AS r ON r.uri = a.uri
    ),
    eligible AS (
        SELECT c.asset_id, c.dag_id FROM consumers AS c
        JOIN tistate.dag AS d ON d.dag_id = c.dag_id
        WHERE NOT d.is_paused AND NOT d.is_stale AND NOT d.timetable_partitioned
    ),
    queued AS (
        INSERT INTO tistate.asset_dag_run_queue (asset_id, target_dag_id, created_at)
        SELECT g.asset_id, g.dag_id, p_now FROM eligible AS g
        ORDER BY g.asset_id, g.dag_id
        ON CONFLICT DO NOTHING
    )
    SELECT coalesce(array_agg(DISTINCT g.dag_id::text ORDER BY g.dag_id::text), '{}') INTO v_dag_ids
    FROM eligible AS g;
    RETURN v_dag_ids;
END
$$;
COMMENT ON FUNCTION tistate._queue_consumers(tistate._planned_event[], timestamptz) IS
    'Queue the consumer DAGs of planned events in asset_dag_run_queue (sorted, ON CONFLICT DO NOTHING); returns the consumer dag ids';

CREATE FUNCTION tistate._notify_events(p_events tistate._planned_event[], p_ti_id uuid)
RETURNS void
LANGUAGE plpgsql
VOLATILE
AS $$
BEGIN
    -- Delivered at commit only, so listeners never hear of an event that rolled back.
    -- SET tistate.notify_events = off skips it (NOTIFY serialises committing transactions).
    IF coalesce(current_setting('tistate.notify_events', true), '') = 'off' THEN
        RETURN;
    END IF;
    PERFORM pg_notify('tistate_events', json_build_object(
                'event_id', e.event_id, 'asset_id', e.asset_id, 'name', a.name, 'uri', a.uri,
                'ti_id', p_ti_id, 'partition_key', e.partition_key)::text)
    FROM unnest(p_events) AS e
    JOIN tistate.asset AS a ON a.id = e.asset_id
    ORDER BY e.event_id;
END
$$;
COMMENT ON FUNCTION tistate._notify_events(tistate._planned_event[], uuid) IS
    'pg_notify(''tistate_events'', {event_id, asset_id, name, uri, ti_id, partition_key}) per event';

------------------------------------------------------------------------------------------------
-- Transitions
------------------------------------------------------------------------------------------------
CREATE FUNCTION tistate._finish_success(
    p_ctx     tistate._ti_context,
    p_payload jsonb,
    p_events  tistate._planned_event[],
    p_dag_ids text[],
    p_now     timestamptz
)
RETURNS tistate.state_update_result
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
    v_result   tistate.state_update_result;
BEGIN
    UPDATE tistate.task_instance AS ti SET
        state = 'success',
        end_date = v_end_date,
        duration = extract(epoch FROM v_end_date - ti.start_date),
        next_method = NULL,
        next_kwargs = NULL,
        rendered_map_index = CASE WHEN p_payload ? 'rendered_map_index'
                                  THEN p_payload ->> 'rendered_map_index' ELSE ti.rendered_map_index END,
        updated_at = p_now
    WHERE ti.id = (p_ctx.ti).id;

    PERFORM tistate._audit(p_ctx, 'success', p_now);
    PERFORM tistate._notify_events(p_events, (p_ctx.ti).id);

    v_result.ti_id := (p_ctx.ti).id;
    v_result.previous_state := (p_ctx.ti).state;
    v_result.new_state := 'success';
    v_result.applied := true;
    v_result.asset_event_ids := ARRAY(SELECT e.event_id FROM unnest(p_events) AS e ORDER BY e.event_id);
    v_result.queued_dag_ids := p_dag_ids;
    RETURN v_result;
END
$$;
COMMENT ON FUNCTION tistate._finish_success(tistate._ti_context, jsonb, tistate._planned_event[], text[], timestamptz) IS
    'The locked part of running -> success: the row update, the audit row and the event notifications';

CREATE FUNCTION tistate._apply_success(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamptz)
RETURNS tistate.state_update_result
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_events tistate._planned_event[];
BEGIN
    -- Registration under the row lock: only reached when the task became running between the
    -- unlocked look and the lock (see tistate._success_before_lock for the usual path).
    v_events := tistate._register_outlet_events(p_ctx, p_payload -> 'task_outlets', p_payload -> 'outlet_events', p_now);
    RETURN tistate._finish_success(p_ctx, p_payload, v_events, tistate._queue_consumers(v_events, p_now), p_now);
END
$$;
COMMENT ON FUNCTION tistate._apply_success(tistate._ti_context, jsonb, timestamptz) IS
    'running -> success with its asset events, alias links, consumer queue rows, audit row and notifications, all under the row lock';

CREATE FUNCTION tistate._peek_ti(p_ti_id uuid)
RETURNS tistate._ti_context
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_ctx tistate._ti_context;
BEGIN
    -- PL/pgSQL, not SQL: a SQL-language function's plan is rebuilt on every call (PostgreSQL < 18).
    SELECT ti, dr.logical_date, d.owners, d.fail_fast, dr.partition_key, dr.partition_date
    INTO v_ctx
    FROM tistate.task_instance AS ti
    JOIN tistate.dag_run AS dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
    JOIN tistate.dag AS d ON d.dag_id = ti.dag_id
    WHERE ti.id = p_ti_id;
    RETURN v_ctx;
END
$$;
COMMENT ON FUNCTION tistate._peek_ti(uuid) IS 'The task instance with its run and DAG facts, without a lock (NULL when absent)';

CREATE FUNCTION tistate._success_before_lock(
    p_ti_id        uuid,
    p_payload      jsonb,
    p_now          timestamptz,
    p_lock_timeout interval
)
RETURNS tistate.state_update_result
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_seen    tistate._ti_context := tistate._peek_ti(p_ti_id);
    v_ctx     tistate._ti_context;
    v_events  tistate._planned_event[];
    v_dag_ids text[];
    v_started timestamptz;
    v_locked  timestamptz;
    v_result  tistate.state_update_result;
BEGIN
    -- The row lock is what heartbeats and a worker's retries wait on, so it is taken last: the events,
    -- links and queue rows are written first, in this same transaction, and the row is locked only
    -- for its own update. If the try is no longer running once locked (a concurrent call won), the
    -- subtransaction undoes the registration and the caller answers from the locked row.
    IF (v_seen.ti).state IS DISTINCT FROM 'running' THEN
        RETURN v_result;
    END IF;
    PERFORM tistate._set_lock_timeout(p_lock_timeout);
    BEGIN
        v_events := tistate._register_outlet_events(v_seen, p_payload -> 'task_outlets', p_payload -> 'outlet_events', p_now);
        v_dag_ids := tistate._queue_consumers(v_events, p_now);
        v_started := clock_timestamp();
        v_ctx := tistate._lock_ti(p_ti_id, p_lock_timeout);
        v_locked := clock_timestamp();
        IF (v_ctx.ti).state IS DISTINCT FROM 'running' OR (v_ctx.ti).try_number IS DISTINCT FROM (v_seen.ti).try_number THEN
            RAISE EXCEPTION USING ERRCODE = 'TSR01', MESSAGE = 'task instance changed before it was locked';
        END IF;
        v_result := tistate._finish_success(v_ctx, p_payload, v_events, v_dag_ids, p_now);
        v_result.lock_wait_ms := extract(epoch FROM v_locked - v_started) * 1000;
        v_result.lock_held_ms := extract(epoch FROM clock_timestamp() - v_locked) * 1000;
        RETURN v_result;
    EXCEPTION WHEN SQLSTATE 'TSR01' THEN
        RETURN NULL;  -- private code, never leaves this function
    END;
END
$$;
COMMENT ON FUNCTION tistate._success_before_lock(uuid, jsonb, timestamptz, interval) IS
    'running -> success with the row lock held only for the row update: registration first, then lock and re-check (NULL result: not running, answer from the locked path)';

CREATE FUNCTION tistate._normalize_state_payload(p_payload jsonb)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_state text := tistate._payload_state(p_payload);
BEGIN
    IF v_state = 'success' THEN
        RETURN tistate._normalize_success(p_payload);
    END IF;
    PERFORM tistate._invalid('state', format('transition to %s is not supported yet', v_state));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tistate._normalize_state_payload(jsonb) IS 'Validate and normalise any TIStateUpdate payload (TS422)';

CREATE FUNCTION tistate._apply_state(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamptz)
RETURNS tistate.state_update_result
LANGUAGE plpgsql
VOLATILE
AS $$
BEGIN
    IF p_payload ->> 'state' = 'success' THEN
        RETURN tistate._apply_success(p_ctx, p_payload, p_now);
    END IF;
    PERFORM tistate._invalid('state', format('transition to %s is not supported yet', p_payload ->> 'state'));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION tistate._apply_state(tistate._ti_context, jsonb, timestamptz) IS 'Dispatch a validated payload to its transition';

CREATE FUNCTION tistate.ti_update_state(
    p_ti_id        uuid,
    p_payload      jsonb,
    p_now          timestamptz DEFAULT clock_timestamp(),
    p_lock_timeout interval DEFAULT NULL
)
RETURNS tistate.state_update_result
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, tistate, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
    v_payload   jsonb;
    v_ctx       tistate._ti_context;
    v_started   timestamptz;
    v_locked    timestamptz;
    v_result    tistate.state_update_result;
BEGIN
    -- 1. Validate and normalise the whole payload before touching any row (TS422).
    v_payload := tistate._normalize_state_payload(p_payload);
    -- The usual success: registration before the row lock, the lock held only for the update.
    IF v_payload ->> 'state' = 'success' THEN
        v_result := tistate._success_before_lock(p_ti_id, v_payload, p_now, p_lock_timeout);
        IF v_result.ti_id IS NOT NULL THEN
            RETURN v_result;
        END IF;
    END IF;
    -- 2. One bounded row lock (TS404 / TS410 when absent, 55P03 after lock_timeout).
    v_started := clock_timestamp();
    v_ctx := tistate._lock_ti(p_ti_id, p_lock_timeout);
    v_locked := clock_timestamp();
    -- 3. Same state: a no-op, so a retried call never duplicates anything.
    IF (v_ctx.ti).state IS NOT DISTINCT FROM v_payload ->> 'state' THEN
        v_result.ti_id := p_ti_id;
        v_result.previous_state := (v_ctx.ti).state;
        v_result.new_state := (v_ctx.ti).state;
        v_result.applied := false;
        v_result.asset_event_ids := ARRAY(SELECT e.id FROM tistate.asset_event AS e
                                          WHERE e.ti_id = p_ti_id AND e.try_number = (v_ctx.ti).try_number
                                          ORDER BY e.id);
        v_result.queued_dag_ids := '{}';
    ELSIF (v_ctx.ti).state IS DISTINCT FROM 'running' THEN
        PERFORM tistate._invalid_state(v_ctx, 'TI was not in the running state so it cannot be updated');
    ELSE
        -- 4. The transition's writes.
        v_result := tistate._apply_state(v_ctx, v_payload, p_now);
    END IF;
    v_result.lock_wait_ms := extract(epoch FROM v_locked - v_started) * 1000;
    v_result.lock_held_ms := extract(epoch FROM clock_timestamp() - v_locked) * 1000;
    RETURN v_result;
END
$$;
COMMENT ON FUNCTION tistate.ti_update_state(uuid, jsonb, timestamptz, interval) IS
    'The Execution API state PATCH: p_payload is Airflow''s TIStateUpdate JSON. Validates (TS422), locks the row (bounded), answers the same-state no-op (applied=false), TS404/TS410/TS409, and applies the transition atomically';

------------------------------------------------------------------------------------------------
-- Privileges: EXECUTE on the public API only.
------------------------------------------------------------------------------------------------
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA tistate FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    tistate.schema_version(),
    tistate.define_dag(jsonb),
    tistate.create_dag_run(text, text, timestamptz, jsonb, timestamptz, text),
    tistate.ti_run(uuid, jsonb, timestamptz, interval),
    tistate.ti_update_state(uuid, jsonb, timestamptz, interval)
TO tistate_executor;
