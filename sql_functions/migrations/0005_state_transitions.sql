SELECT set_config('search_path', tistate._function_search_path(), true);

CREATE FUNCTION tistate._lock_ti(p_ti_id uuid, p_lock_timeout interval DEFAULT NULL::interval)
 RETURNS tistate._ti_context
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_ctx tistate._ti_context;
BEGIN
    PERFORM tistate._set_lock_timeout(p_lock_timeout);
    SELECT ROW(ti.id, ti.task_id, ti.dag_id, ti.run_id, ti.map_index, ti.state, ti.try_number, ti.hostname,
               ti.unixname, ti.pid, ti.start_date, ti.rendered_map_index, ti.next_kwargs)::tistate._ti_row,
           dr.logical_date, d.owners, d.fail_fast, dr.partition_key
    INTO v_ctx
    FROM task_instance AS ti
    JOIN dag_run AS dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
    JOIN dag AS d ON d.dag_id = ti.dag_id
    WHERE ti.id = p_ti_id
    FOR UPDATE OF ti;
    IF NOT FOUND THEN
        PERFORM tistate._raise_missing_ti(p_ti_id);
    END IF;
    RETURN v_ctx;
END
$function$;

COMMENT ON FUNCTION tistate._lock_ti(p_ti_id uuid, p_lock_timeout interval) IS 'Lock one task instance row (bounded by lock_timeout) with its run and DAG facts; TS404/TS410 if absent';

CREATE FUNCTION tistate._peek_ti(p_ti_id uuid)
 RETURNS tistate._ti_context
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_ctx tistate._ti_context;
BEGIN
    -- PL/pgSQL, not SQL: a SQL-language function's plan is rebuilt on every call (PostgreSQL < 18).
    SELECT ROW(ti.id, ti.task_id, ti.dag_id, ti.run_id, ti.map_index, ti.state, ti.try_number, ti.hostname,
               ti.unixname, ti.pid, ti.start_date, ti.rendered_map_index, ti.next_kwargs)::tistate._ti_row,
           dr.logical_date, d.owners, d.fail_fast, dr.partition_key
    INTO v_ctx
    FROM task_instance AS ti
    JOIN dag_run AS dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
    JOIN dag AS d ON d.dag_id = ti.dag_id
    WHERE ti.id = p_ti_id;
    RETURN v_ctx;
END
$function$;

COMMENT ON FUNCTION tistate._peek_ti(p_ti_id uuid) IS 'The task instance with its run and DAG facts, without a lock (NULL when absent)';

CREATE FUNCTION tistate._audit(p_ctx tistate._ti_context, p_event text, p_now timestamp with time zone, p_extra text DEFAULT NULL::text)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    -- PL/pgSQL, not SQL, so the INSERT's plan is cached for the session.
    INSERT INTO log (dttm, dag_id, task_id, run_id, map_index, try_number, event, logical_date, owner, extra)
    VALUES (p_now, (p_ctx.ti).dag_id, (p_ctx.ti).task_id, (p_ctx.ti).run_id, (p_ctx.ti).map_index,
            (p_ctx.ti).try_number, p_event, p_ctx.logical_date, p_ctx.owners,
            coalesce(p_extra, CASE WHEN coalesce((p_ctx.ti).hostname, '') <> ''
                                   THEN jsonb_build_object('host_name', (p_ctx.ti).hostname)::text END));
END
$function$;

COMMENT ON FUNCTION tistate._audit(p_ctx tistate._ti_context, p_event text, p_now timestamp with time zone, p_extra text) IS 'The audit log row of an applied transition (Airflow reference section 3.7)';

CREATE FUNCTION tistate._applied(p_ctx tistate._ti_context, p_new_state text, p_new_ti_id uuid DEFAULT NULL::uuid)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
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
$function$;

COMMENT ON FUNCTION tistate._applied(p_ctx tistate._ti_context, p_new_state text, p_new_ti_id uuid) IS 'The result of an applied transition without asset events';

CREATE FUNCTION tistate._payload_state(p_payload jsonb)
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
    IF v_state NOT IN ('success', 'failed', 'skipped', 'removed', 'upstream_failed', 'up_for_retry',
                       'up_for_reschedule', 'deferred', 'scheduled', 'queued', 'restarting') THEN
        PERFORM tistate._invalid('state', format('%s is not a state a task instance can be updated to', v_state));
    END IF;
    RETURN v_state;
END
$function$;

COMMENT ON FUNCTION tistate._payload_state(p_payload jsonb) IS 'The TIStateUpdate discriminator: a known target state, else TS422';

CREATE FUNCTION tistate._normalize_success(p_payload jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_outlets jsonb;
    v_events  jsonb;
    v_event   jsonb;
    v_path    text;
    v_i       integer;
    v_ok      boolean;
    v_result  jsonb;
BEGIN
    -- The result: state, end_date (normalised), rendered_map_index when sent, and task_outlets and
    -- outlet_events as sent ([] when absent or null), every field checked.
    -- Fast path: a payload that passes these checks is one the precise path below accepts, with the
    -- same result. Anything else (every invalid payload among them) goes the precise way, which finds
    -- the first bad field and raises its TS422. The end_date pattern is stricter than the precise
    -- one (calendar dates without 29 February, offsets up to 14 h), so the cast cannot fail here.
    IF jsonb_typeof(p_payload) = 'object'
       AND p_payload - ARRAY['state', 'end_date', 'task_outlets', 'outlet_events', 'rendered_map_index'] = '{}'::jsonb
       AND jsonb_typeof(p_payload -> 'end_date') = 'string'
       AND p_payload ->> 'end_date' ~ '^[1-9]\d{3}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?(?:Z|z|[+-](?:0\d|1[0-4])(?::?[0-5]\d)?)$'
       AND coalesce(jsonb_typeof(p_payload -> 'rendered_map_index'), 'null') IN ('null', 'string')
       AND coalesce(length(p_payload ->> 'rendered_map_index') <= 250, true)
       AND coalesce(jsonb_typeof(p_payload -> 'task_outlets'), 'null') IN ('null', 'array')
       AND coalesce(jsonb_typeof(p_payload -> 'outlet_events'), 'null') IN ('null', 'array')
       AND coalesce(jsonb_path_query_first(p_payload, '$.task_outlets.size()')::integer, 0) <= 1000
       AND coalesce(jsonb_path_query_first(p_payload, '$.outlet_events.size()')::integer, 0) <= 10000
    THEN
        SELECT coalesce(o.ok, true) AND coalesce(e.ok, true)
        INTO v_ok
        FROM (
            SELECT bool_and(coalesce(CASE WHEN jsonb_typeof(x.v) = 'object' THEN
                       x.v - ARRAY['type', 'name', 'uri'] = '{}'::jsonb
                       AND jsonb_typeof(x.v -> 'type') = 'string'
                       AND x.v ->> 'type' IN ('Asset', 'AssetNameRef', 'AssetUriRef', 'AssetAlias')
                       AND coalesce(jsonb_typeof(x.v -> 'name'), 'null') IN ('null', 'string')
                       AND coalesce(length(x.v ->> 'name') BETWEEN 1 AND 1500, true)
                       AND coalesce(octet_length(x.v ->> 'name'), 0) + coalesce(octet_length(x.v ->> 'uri'), 0) <= 2600
                       AND coalesce(jsonb_typeof(x.v -> 'uri'), 'null') IN ('null', 'string')
                       AND coalesce(length(x.v ->> 'uri') BETWEEN 1 AND 1500
                                    AND x.v ->> 'uri' ~ '^[\x01-\x7f]*$'
                                    AND lower(x.v ->> 'uri') !~ '^airflow://', true)
                       AND CASE x.v ->> 'type'
                               WHEN 'Asset' THEN x.v ->> 'name' IS NOT NULL AND x.v ->> 'uri' IS NOT NULL
                               WHEN 'AssetUriRef' THEN x.v ->> 'uri' IS NOT NULL
                               ELSE x.v ->> 'name' IS NOT NULL
                           END
                   END, false)) AS ok
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_payload -> 'task_outlets') = 'array'
                                           THEN p_payload -> 'task_outlets' ELSE '[]' END) AS x (v)
        ) AS o, (
            SELECT bool_and(coalesce(CASE
                       WHEN jsonb_typeof(x.v) <> 'object' OR jsonb_typeof(x.v -> 'dest_asset_key') <> 'object' THEN false
                       ELSE
                           (x.v -> 'dest_asset_key') - ARRAY['name', 'uri'] = '{}'::jsonb
                           AND jsonb_typeof(x.v -> 'dest_asset_key' -> 'name') = 'string'
                           AND length(x.v -> 'dest_asset_key' ->> 'name') BETWEEN 1 AND 1500
                           AND octet_length(x.v -> 'dest_asset_key' ->> 'name')
                               + octet_length(x.v -> 'dest_asset_key' ->> 'uri') <= 2600
                           AND jsonb_typeof(x.v -> 'dest_asset_key' -> 'uri') = 'string'
                           AND length(x.v -> 'dest_asset_key' ->> 'uri') BETWEEN 1 AND 1500
                           AND x.v -> 'dest_asset_key' ->> 'uri' ~ '^[\x01-\x7f]*$'
                           AND lower(x.v -> 'dest_asset_key' ->> 'uri') !~ '^airflow://'
                           AND coalesce(jsonb_typeof(x.v -> 'extra'), 'null') IN ('null', 'object')
                           AND CASE WHEN coalesce(jsonb_typeof(x.v -> 'source_alias_name'), 'null') <> 'null' THEN
                                   -- an alias event
                                   x.v - ARRAY['source_alias_name', 'dest_asset_key', 'dest_asset_extra', 'extra'] = '{}'::jsonb
                                   AND jsonb_typeof(x.v -> 'source_alias_name') = 'string'
                                   AND length(x.v ->> 'source_alias_name') BETWEEN 1 AND 1500
                                   AND octet_length(x.v ->> 'source_alias_name') <= 2600
                                   AND coalesce(jsonb_typeof(x.v -> 'dest_asset_extra'), 'null') IN ('null', 'object')
                               ELSE
                                   x.v - ARRAY['dest_asset_key', 'extra', 'partition_key', 'source_alias_name'] = '{}'::jsonb
                                   AND (coalesce(jsonb_typeof(x.v -> 'partition_key'), 'null') = 'null'
                                        OR (jsonb_typeof(x.v -> 'partition_key') = 'string'
                                            AND btrim(x.v ->> 'partition_key', E' \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f') <> ''
                                            AND length(x.v ->> 'partition_key') <= 250))
                               END
                   END, false)) AS ok
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_payload -> 'outlet_events') = 'array'
                                           THEN p_payload -> 'outlet_events' ELSE '[]' END) AS x (v)
        ) AS e;
        IF v_ok THEN
            v_result := jsonb_build_object('state', 'success', 'end_date', (p_payload ->> 'end_date')::timestamptz);
            IF p_payload ? 'rendered_map_index' THEN
                v_result := v_result || jsonb_build_object('rendered_map_index', p_payload ->> 'rendered_map_index');
            END IF;
            RETURN v_result || jsonb_build_object(
                'task_outlets', CASE WHEN jsonb_typeof(p_payload -> 'task_outlets') = 'array' THEN p_payload -> 'task_outlets' ELSE '[]' END,
                'outlet_events', CASE WHEN jsonb_typeof(p_payload -> 'outlet_events') = 'array' THEN p_payload -> 'outlet_events' ELSE '[]' END);
        END IF;
    END IF;

    -- Precise path: field by field, in payload order; the first bad field raises TS422 naming it.
    PERFORM tistate._check_object(p_payload, '',
        ARRAY['state', 'end_date', 'task_outlets', 'outlet_events', 'rendered_map_index'], ARRAY['end_date']);
    v_result := jsonb_build_object('state', 'success',
                                   'end_date', tistate._timestamp(p_payload -> 'end_date', 'end_date'));
    IF p_payload ? 'rendered_map_index' THEN
        v_result := v_result || jsonb_build_object('rendered_map_index',
            tistate._text(p_payload -> 'rendered_map_index', 'rendered_map_index', 250));
    END IF;
    v_outlets := tistate._array(p_payload -> 'task_outlets', 'task_outlets');
    -- Bounded work per call (a success with the most of both registers in about a second).
    IF jsonb_array_length(v_outlets) > 1000 THEN
        PERFORM tistate._invalid('task_outlets', 'at most 1000 outlets');
    END IF;
    FOR v_i IN 0 .. jsonb_array_length(v_outlets) - 1 LOOP
        PERFORM tistate._asset_profile(v_outlets -> v_i, format('task_outlets[%s]', v_i));
    END LOOP;
    v_events := tistate._array(p_payload -> 'outlet_events', 'outlet_events');
    IF jsonb_array_length(v_events) > 10000 THEN
        PERFORM tistate._invalid('outlet_events', 'at most 10000 events');
    END IF;
    FOR v_i IN 0 .. jsonb_array_length(v_events) - 1 LOOP
        v_path := format('outlet_events[%s]', v_i);
        v_event := v_events -> v_i;
        IF jsonb_typeof(v_event) = 'object' AND jsonb_typeof(v_event -> 'source_alias_name') IS DISTINCT FROM 'null'
           AND v_event ? 'source_alias_name' THEN
            PERFORM tistate._check_object(v_event, v_path,
                ARRAY['source_alias_name', 'dest_asset_key', 'dest_asset_extra', 'extra'],
                ARRAY['source_alias_name', 'dest_asset_key']);
            PERFORM tistate._asset_key(v_event -> 'dest_asset_key', v_path || '.dest_asset_key');
            PERFORM tistate._asset_name(v_event -> 'source_alias_name', v_path || '.source_alias_name');
            PERFORM tistate._json_object(v_event -> 'dest_asset_extra', v_path || '.dest_asset_extra');
            PERFORM tistate._json_object(v_event -> 'extra', v_path || '.extra');
        ELSE
            PERFORM tistate._check_object(v_event, v_path, ARRAY['dest_asset_key', 'extra', 'partition_key', 'source_alias_name'],
                                          ARRAY['dest_asset_key']);
            PERFORM tistate._asset_key(v_event -> 'dest_asset_key', v_path || '.dest_asset_key');
            PERFORM tistate._json_object(v_event -> 'extra', v_path || '.extra');
            PERFORM tistate._partition_key(v_event -> 'partition_key', v_path || '.partition_key');
        END IF;
    END LOOP;
    RETURN v_result || jsonb_build_object('task_outlets', v_outlets, 'outlet_events', v_events);
END
$function$;

COMMENT ON FUNCTION tistate._normalize_success(p_payload jsonb) IS 'Validate (TS422) and normalise a TISuccessStatePayload';

CREATE FUNCTION tistate._normalize_terminal(p_payload jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    -- TITerminalStatePayload: failed, skipped, removed, upstream_failed.
    PERFORM tistate._check_object(p_payload, '', ARRAY['state', 'end_date', 'rendered_map_index'], ARRAY['end_date']);
    RETURN tistate._with_rendered_map_index(
        jsonb_build_object('state', p_payload ->> 'state',
                           'end_date', tistate._timestamp(p_payload -> 'end_date', 'end_date')),
        p_payload);
END
$function$;

COMMENT ON FUNCTION tistate._normalize_terminal(p_payload jsonb) IS 'Validate (TS422) and normalise a TITerminalStatePayload';

CREATE FUNCTION tistate._normalize_retry(p_payload jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    -- TIRetryStatePayload. retry_reason is truncated to the column's 500 characters, as Airflow does.
    PERFORM tistate._check_object(p_payload, '',
        ARRAY['state', 'end_date', 'rendered_map_index', 'retry_delay_seconds', 'retry_reason'], ARRAY['end_date']);
    RETURN tistate._with_rendered_map_index(
        jsonb_build_object(
            'state', 'up_for_retry',
            'end_date', tistate._timestamp(p_payload -> 'end_date', 'end_date'),
            'retry_delay_seconds', tistate._delay_seconds(
                to_jsonb(tistate._number(p_payload -> 'retry_delay_seconds', 'retry_delay_seconds')), 'retry_delay_seconds'),
            'retry_reason', left(tistate._text(p_payload -> 'retry_reason', 'retry_reason', 1000000), 500)),
        p_payload);
END
$function$;

COMMENT ON FUNCTION tistate._normalize_retry(p_payload jsonb) IS 'Validate (TS422) and normalise a TIRetryStatePayload';

CREATE FUNCTION tistate._normalize_reschedule(p_payload jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    -- TIRescheduleStatePayload.
    PERFORM tistate._check_object(p_payload, '', ARRAY['state', 'reschedule_date', 'end_date'],
                                  ARRAY['reschedule_date', 'end_date']);
    RETURN jsonb_build_object(
        'state', 'up_for_reschedule',
        'reschedule_date', tistate._timestamp(p_payload -> 'reschedule_date', 'reschedule_date'),
        'end_date', tistate._timestamp(p_payload -> 'end_date', 'end_date'));
END
$function$;

COMMENT ON FUNCTION tistate._normalize_reschedule(p_payload jsonb) IS 'Validate (TS422) and normalise a TIRescheduleStatePayload';

CREATE FUNCTION tistate._normalize_deferred(p_payload jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
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
        'trigger_timeout_seconds', tistate._delay_seconds(p_payload -> 'trigger_timeout', 'trigger_timeout'),
        'queue', tistate._text(p_payload -> 'queue', 'queue', 256),
        'next_kwargs', tistate._json_object(p_payload -> 'next_kwargs', 'next_kwargs'));
END
$function$;

COMMENT ON FUNCTION tistate._normalize_deferred(p_payload jsonb) IS 'Validate (TS422) and normalise a TIDeferredStatePayload';

CREATE FUNCTION tistate._normalize_state_payload(p_payload jsonb)
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
$function$;

COMMENT ON FUNCTION tistate._normalize_state_payload(p_payload jsonb) IS 'Validate and normalise any TIStateUpdate payload (TS422)';

CREATE FUNCTION tistate._consumers_of(p_asset_id integer, p_name text, p_uri text, p_alias_ids integer[])
 RETURNS SETOF text
 LANGUAGE sql
 STABLE
AS $function$
    -- Driven by the schedule references of this asset, its aliases, name and uri (indexed), never by
    -- a scan of all DAGs.
    SELECT d.dag_id::text
    FROM (SELECT r.dag_id FROM dag_schedule_asset_reference AS r WHERE r.asset_id = p_asset_id
          UNION
          SELECT r.dag_id FROM dag_schedule_asset_alias_reference AS r WHERE r.alias_id = ANY (p_alias_ids)
          UNION
          SELECT r.dag_id FROM dag_schedule_asset_name_reference AS r WHERE r.name = p_name
          UNION
          SELECT r.dag_id FROM dag_schedule_asset_uri_reference AS r WHERE r.uri = p_uri) AS c
    JOIN dag AS d ON d.dag_id = c.dag_id
    WHERE NOT d.is_paused AND NOT d.is_stale AND NOT d.timetable_partitioned
$function$;

COMMENT ON FUNCTION tistate._consumers_of(p_asset_id integer, p_name text, p_uri text, p_alias_ids integer[]) IS 'The DAGs an event of this asset (emitted through these aliases) queues: scheduled on the asset, an alias, its name or uri; not paused, stale or partition-aware';

CREATE FUNCTION tistate._queue_consumers(p_events tistate._planned_event[], p_now timestamp with time zone)
 RETURNS text[]
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    v_dag_ids text[];
BEGIN
    -- Events with a partition key never go to asset_dag_run_queue (Airflow reference 4.6). Rows are
    -- inserted sorted by (asset_id, target_dag_id), so concurrent callers take the queue's key locks
    -- in the same order and cannot deadlock.
    WITH eligible AS (
        SELECT DISTINCT e.asset_id, c.dag_id
        FROM unnest(p_events) AS e
        JOIN asset AS a ON a.id = e.asset_id
        CROSS JOIN LATERAL tistate._consumers_of(e.asset_id, a.name, a.uri, e.alias_ids) AS c (dag_id)
        WHERE e.partition_key IS NULL
    ),
    queued AS (
        INSERT INTO asset_dag_run_queue AS q (asset_id, target_dag_id, created_at)
        SELECT g.asset_id, g.dag_id, p_now FROM eligible AS g
        ORDER BY g.asset_id, g.dag_id
        ON CONFLICT (asset_id, target_dag_id) DO UPDATE SET created_at = greatest(q.created_at, excluded.created_at)
    )
    SELECT coalesce(array_agg(DISTINCT g.dag_id ORDER BY g.dag_id), '{}') INTO v_dag_ids FROM eligible AS g;
    RETURN v_dag_ids;
END
$function$;

COMMENT ON FUNCTION tistate._queue_consumers(p_events tistate._planned_event[], p_now timestamp with time zone) IS 'Queue the consumer DAGs (tistate._consumers_of) of planned events in asset_dag_run_queue (sorted, ON CONFLICT DO NOTHING); returns the consumer dag ids';

CREATE FUNCTION tistate._notification(p_event_id integer, p_asset_id integer, p_ti_id uuid, p_partition_key text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- Ids and the partition key (at most 250 characters) only: at most about 1.2 kB, far below
    -- NOTIFY's 8000-byte limit whatever the asset's name or uri, so no event can make a
    -- notification fail. Listeners read the rest (tistate.asset_events).
    SELECT json_build_object('event_id', p_event_id, 'asset_id', p_asset_id, 'ti_id', p_ti_id,
                             'partition_key', p_partition_key)::text
$function$;

COMMENT ON FUNCTION tistate._notification(p_event_id integer, p_asset_id integer, p_ti_id uuid, p_partition_key text) IS 'The tistate_events payload of one event: ids and partition key only, bounded by construction';

CREATE FUNCTION tistate._notify_events(p_events tistate._planned_event[], p_ti_id uuid)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_mode text := coalesce(current_setting('tistate.notify_events', true), '');
BEGIN
    IF v_mode = 'off' OR coalesce(cardinality(p_events), 0) = 0 THEN
        RETURN;
    END IF;
    IF v_mode = 'relay' THEN
        INSERT INTO tistate.asset_event_outbox (event_ids)
        SELECT array_agg(e.event_id ORDER BY e.event_id) FROM unnest(p_events) AS e;
        RETURN;
    END IF;
    -- Delivered at commit only, so listeners never hear of an event that rolled back.
    PERFORM pg_notify('tistate_events', tistate._notification(e.event_id, e.asset_id, p_ti_id, e.partition_key))
    FROM unnest(p_events) AS e
    ORDER BY e.event_id;
END
$function$;

COMMENT ON FUNCTION tistate._notify_events(p_events tistate._planned_event[], p_ti_id uuid) IS 'Announce events on tistate_events: pg_notify now (notify_events on), an outbox row for the relay (relay), or nothing (off)';

CREATE FUNCTION tistate._outlet_key(p_outlet jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- What identifies an outlet of each type: an asset by name and uri, an alias or a name
    -- reference by name, a uri reference by uri (names and uris never contain NUL).
    SELECT (p_outlet ->> 'type') || E'\n' || CASE p_outlet ->> 'type'
               WHEN 'Asset' THEN coalesce(p_outlet ->> 'name', '') || E'\n' || coalesce(p_outlet ->> 'uri', '')
               WHEN 'AssetUriRef' THEN coalesce(p_outlet ->> 'uri', '')
               ELSE coalesce(p_outlet ->> 'name', '') END
$function$;

COMMENT ON FUNCTION tistate._outlet_key(p_outlet jsonb) IS 'The identity of an outlet for the declared-outlet check: type with name and uri (Asset), name (AssetAlias, AssetNameRef) or uri (AssetUriRef)';

CREATE FUNCTION tistate._check_declared_outlets(p_dag_id text, p_task_id text, p_run_id text, p_outlets jsonb)
 RETURNS void
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_declared jsonb;
    v_outlet   jsonb;
BEGIN
    -- The outlets the task's definition declares: the DAG document standalone, the serialized DAG
    -- of the run's version in Airflow mode (tistate._dag_tasks). Every outlet of the payload must be
    -- one of them: same type, name and uri (a name or uri reference: its name or uri).
    SELECT t.outlets INTO v_declared FROM tistate._dag_tasks(p_dag_id, p_run_id, p_task_id) AS t;
    -- One key per outlet (what identifies it for its type), compared by a hashed anti-join: linear
    -- in the number of outlets.
    SELECT o INTO v_outlet
    FROM jsonb_array_elements(p_outlets) AS o
    WHERE tistate._outlet_key(o) NOT IN (SELECT tistate._outlet_key(d) FROM jsonb_array_elements(coalesce(v_declared, '[]')) AS d)
    LIMIT 1;
    IF FOUND THEN
        PERFORM tistate._raise('TS403',
            format('task %s of dag %s does not declare the outlet %s', p_task_id, p_dag_id, v_outlet),
            jsonb_build_object('reason', 'undeclared_outlet', 'field', 'task_outlets', 'outlet', v_outlet,
                               'dag_id', p_dag_id, 'task_id', p_task_id),
            'a task writes asset events only for the outlets its DAG declares');
    END IF;
END
$function$;

COMMENT ON FUNCTION tistate._check_declared_outlets(p_dag_id text, p_task_id text, p_run_id text, p_outlets jsonb) IS 'TS403 when the payload names an outlet (asset, alias, name or uri reference) the task''s definition does not declare';

CREATE FUNCTION tistate._lock_consumers(p_outlets jsonb, p_events jsonb, p_now timestamp with time zone)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_dags        text[];
    v_partitioned text;
BEGIN
    -- Every DAG an event of these outlets could queue (a superset: by asset name or uri, and by the
    -- declared aliases), share-locked in dag_id order so concurrent completions cannot deadlock on
    -- them; then the time the events and queue rows are stamped with.
    SELECT array_agg(x.dag_id) INTO v_dags
    FROM (
        SELECT d.dag_id FROM dag AS d
        WHERE d.dag_id IN (
            WITH keys AS (
                SELECT o.name, o.uri FROM jsonb_to_recordset(p_outlets) AS o (type text, name text, uri text)
                WHERE o.type <> 'AssetAlias'
                UNION
                SELECT e.dest_asset_key ->> 'name', e.dest_asset_key ->> 'uri'
                FROM jsonb_to_recordset(p_events) AS e (dest_asset_key jsonb)
            )
            -- equi-joins (hashable), not one join on an OR
            SELECT r.dag_id FROM dag_schedule_asset_reference AS r
            WHERE r.asset_id IN (SELECT a.id FROM asset AS a JOIN keys AS k ON a.name = k.name
                                 UNION
                                 SELECT a.id FROM asset AS a JOIN keys AS k ON a.uri = k.uri)
            UNION
            SELECT r.dag_id FROM dag_schedule_asset_alias_reference AS r
            JOIN asset_alias AS al ON al.id = r.alias_id
            WHERE al.name IN (SELECT o.name FROM jsonb_to_recordset(p_outlets) AS o (type text, name text)
                              WHERE o.type = 'AssetAlias')
            UNION
            SELECT r.dag_id FROM dag_schedule_asset_name_reference AS r WHERE r.name IN (SELECT k.name FROM keys AS k)
            UNION
            SELECT r.dag_id FROM dag_schedule_asset_uri_reference AS r WHERE r.uri IN (SELECT k.uri FROM keys AS k))
        ORDER BY d.dag_id
        FOR SHARE OF d) AS x;
    -- Partition-aware consumers get asset_partition_dag_run rows from Airflow's API server, which
    -- tistate does not write: refused, never silently left unqueued.
    SELECT d.dag_id INTO v_partitioned
    FROM dag AS d
    WHERE d.dag_id = ANY (v_dags) AND d.timetable_partitioned AND NOT d.is_paused AND NOT d.is_stale
    LIMIT 1;
    IF FOUND THEN
        PERFORM tistate._raise('TS501',
            format('dag %s is partition-aware, which tistate''s Airflow mode does not support', v_partitioned),
            jsonb_build_object('reason', 'partition_aware_consumer', 'dag_id', v_partitioned),
            'Airflow''s API server queues partition-aware consumers (asset_partition_dag_run); route this task''s state calls to it');
    END IF;
    RETURN greatest(p_now, clock_timestamp());
END
$function$;

COMMENT ON FUNCTION tistate._lock_consumers(p_outlets jsonb, p_events jsonb, p_now timestamp with time zone) IS 'Airflow mode: share-lock the DAGs these outlets could queue (so the scheduler does not create their runs until this transaction commits) and return the stamp for the events, taken after the locks';

CREATE FUNCTION tistate._register_outlet_events(p_ti_id uuid, p_dag_id text, p_task_id text, p_run_id text, p_map_index integer, p_try_number integer, p_run_partition_key text, p_outlets jsonb, p_events jsonb, p_now timestamp with time zone, OUT events tistate._planned_event[], OUT event_ids integer[], OUT dag_ids text[])
 RETURNS record
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    v_aliases text[];
    v_check   boolean := true;
    v_missing boolean;
    v_airflow boolean := tistate._is_airflow();
    v_stamp   timestamptz := p_now;
    v_created jsonb;
BEGIN
    -- p_outlets and p_events are validated by _normalize_success: arrays of Airflow's AssetProfile
    -- and outlet event objects, read here with Airflow's defaults (absent or null extra = {}).
    events := '{}';
    event_ids := '{}';
    dag_ids := '{}';
    -- Events (outlet_events) for assets or aliases not in task_outlets are ignored, as in Airflow;
    -- so with no outlets there is nothing to register.
    IF jsonb_array_length(p_outlets) = 0 THEN
        RETURN;
    END IF;
    -- A task writes events only for outlets its DAG declares (Airflow trusts the worker here).
    PERFORM tistate._check_declared_outlets(p_dag_id, p_task_id, p_run_id, p_outlets);
    -- The aliases the task declared: only their alias events count.
    v_aliases := ARRAY(SELECT DISTINCT o ->> 'name' FROM jsonb_array_elements(p_outlets) AS o
                       WHERE o ->> 'type' = 'AssetAlias');
    IF v_airflow THEN
        -- Airflow's scheduler consumes the events of a queue row up to the row's created_at and
        -- deletes the row; an event stamped before a run it missed would be left behind forever
        -- (apache/airflow#54659). Share-locking the consumer DAG rows, which the scheduler locks
        -- (FOR NO KEY UPDATE SKIP LOCKED) while it creates their runs, keeps it away from these
        -- DAGs until this transaction commits, and the stamp taken after the lock is later than
        -- any run it created before.
        v_stamp := tistate._lock_consumers(p_outlets, p_events, p_now);
    END IF;

    LOOP
        WITH payload_events AS MATERIALIZED (
            SELECT e.ord, e.alias, e.dest_asset_key ->> 'name' AS name, e.dest_asset_key ->> 'uri' AS uri,
                   coalesce(e.asset_extra, '{}') AS asset_extra, coalesce(e.extra, '{}') AS extra, e.partition_key
            FROM ROWS FROM (jsonb_to_recordset(p_events)
                     AS (source_alias_name text, dest_asset_key jsonb, dest_asset_extra jsonb, extra jsonb, partition_key text))
                 WITH ORDINALITY AS e (alias, dest_asset_key, asset_extra, extra, partition_key, ord)
        ),
        -- Active assets the task declared, each once: an asset listed as Asset, NameRef and UriRef
        -- gets one event per payload, not three (a fix over Airflow).
        targets AS (
            -- Three equi-joins (hashable: linear in the number of outlets), not one join on an OR.
            SELECT a.id, a.name, a.uri
            FROM jsonb_to_recordset(p_outlets) AS o (type text, name text, uri text)
            JOIN asset AS a ON a.name = o.name AND a.uri = o.uri
            JOIN asset_active AS act ON act.name = a.name AND act.uri = a.uri
            WHERE o.type = 'Asset'
            UNION
            SELECT a.id, a.name, a.uri
            FROM jsonb_to_recordset(p_outlets) AS o (type text, name text)
            JOIN asset_active AS act ON act.name = o.name
            JOIN asset AS a ON a.name = act.name AND a.uri = act.uri
            WHERE o.type = 'AssetNameRef'
            UNION
            SELECT a.id, a.name, a.uri
            FROM jsonb_to_recordset(p_outlets) AS o (type text, uri text)
            JOIN asset_active AS act ON act.uri = o.uri
            JOIN asset AS a ON a.name = act.name AND a.uri = act.uri
            WHERE o.type = 'AssetUriRef'
        ),
        -- One event per payload sent for the asset, or one default event when none was sent.
        direct AS (
            SELECT t.id AS asset_id, t.name, t.uri, coalesce(e.extra, '{}'::jsonb) AS extra,
                   coalesce(e.partition_key, p_run_partition_key) AS partition_key,
                   '{}'::integer[] AS alias_ids, 1 AS kind, coalesce(e.ord, 0) AS ord
            FROM targets AS t
            LEFT JOIN payload_events AS e ON e.alias IS NULL AND e.name = t.name AND e.uri = t.uri
        ),
        -- Alias events of declared aliases: one per distinct (asset, asset extra, extra), linked to
        -- every alias that sent it.
        alias_groups AS (
            -- The alias ids come from one join with asset_alias (not a look-up per group): linear
            -- in the number of events.
            SELECT e.name, e.uri, e.extra, count(DISTINCT e.alias)::integer AS alias_count,
                   coalesce(array_agg(DISTINCT al.id ORDER BY al.id) FILTER (WHERE al.id IS NOT NULL), '{}') AS alias_ids,
                   min(e.ord) AS ord
            FROM payload_events AS e
            LEFT JOIN asset_alias AS al ON al.name = e.alias
            WHERE e.alias IN (SELECT unnest(v_aliases))
            GROUP BY e.name, e.uri, e.asset_extra, e.extra
        ),
        via_alias AS (
            SELECT a.id AS asset_id, g.name, g.uri, g.extra, p_run_partition_key AS partition_key, g.alias_ids,
                   -- Airflow mode: an alias event counts for an inactive asset too, as in Airflow
                   -- (its scheduler activates alias-reached assets itself).
                   2 AS kind, g.ord, v_airflow OR act.name IS NOT NULL AS active, g.alias_count
            FROM alias_groups AS g
            LEFT JOIN asset AS a ON a.name = g.name AND a.uri = g.uri
            LEFT JOIN asset_active AS act ON act.name = g.name AND act.uri = g.uri
        ),
        -- An alias, or an asset first reached through an alias, that does not exist yet: nothing is
        -- written, they are created below and the statement runs again.
        missing AS (
            SELECT v_check AND coalesce(bool_or(v.asset_id IS NULL OR cardinality(v.alias_ids) < v.alias_count), false) AS found
            FROM via_alias AS v
        ),
        -- Event ids in a fixed order: direct events, then alias events, by asset and payload position.
        planned AS MATERIALIZED (
            SELECT nextval('asset_event_id_seq')::integer AS event_id, p.asset_id, p.name, p.uri, p.extra,
                   p.partition_key, p.alias_ids
            FROM (
                SELECT d.asset_id, d.name, d.uri, d.extra, d.partition_key, d.alias_ids, d.kind, d.ord FROM direct AS d
                UNION ALL
                SELECT v.asset_id, v.name, v.uri, v.extra, v.partition_key, v.alias_ids, v.kind, v.ord
                FROM via_alias AS v WHERE v.active
                ORDER BY kind, asset_id, ord
            ) AS p
            WHERE NOT (SELECT m.found FROM missing AS m)
        ),
        new_events AS (
            INSERT INTO asset_event (id, asset_id, extra, source_task_id, source_dag_id, source_run_id,
                                     source_map_index, "timestamp", partition_key)
            SELECT p.event_id, p.asset_id, p.extra, p_task_id, p_dag_id, p_run_id,
                   p_map_index, v_stamp, p.partition_key
            FROM planned AS p
            ORDER BY p.event_id
        ),
        new_producers AS (
            INSERT INTO tistate.asset_event_producer (event_id, ti_id, try_number)
            SELECT p.event_id, p_ti_id, p_try_number FROM planned AS p ORDER BY p.event_id
        ),
        new_links AS (
            INSERT INTO asset_alias_asset_event (alias_id, event_id)
            SELECT al.id, p.event_id
            FROM planned AS p CROSS JOIN unnest(p.alias_ids) AS al (id)
            ORDER BY 1, 2
        ),
        new_alias_assets AS (
            INSERT INTO asset_alias_asset (alias_id, asset_id)
            SELECT DISTINCT al.id, p.asset_id
            FROM planned AS p CROSS JOIN unnest(p.alias_ids) AS al (id)
            ORDER BY 1, 2
            ON CONFLICT DO NOTHING
            RETURNING 1
        ),
        -- Consumers of the events without a partition key (tistate._consumers_of, inlined).
        eligible AS (
            SELECT DISTINCT p.asset_id, c.dag_id
            FROM planned AS p
            CROSS JOIN LATERAL tistate._consumers_of(p.asset_id, p.name, p.uri, p.alias_ids) AS c (dag_id)
            WHERE p.partition_key IS NULL
        ),
        -- Sorted by (asset_id, target_dag_id), and only once the alias-asset links are in (the count
        -- makes it wait for them): every success takes these key locks in the same order, as before,
        -- so concurrent completions cannot deadlock. A row already queued takes the newer time: the
        -- scheduler consumes events up to it, so a burst is consumed whole (Airflow keeps the
        -- first event's time and leaves the rest of the burst behind).
        queued AS (
            INSERT INTO asset_dag_run_queue AS q (asset_id, target_dag_id, created_at)
            SELECT g.asset_id, g.dag_id, v_stamp FROM eligible AS g
            WHERE (SELECT count(*) FROM new_alias_assets) >= 0
            ORDER BY g.asset_id, g.dag_id
            ON CONFLICT (asset_id, target_dag_id) DO UPDATE SET created_at = greatest(q.created_at, excluded.created_at)
        )
        SELECT (SELECT m.found FROM missing AS m),
               (SELECT array_agg(ROW(p.event_id, p.asset_id, p.extra, p.partition_key, p.alias_ids)::tistate._planned_event
                                 ORDER BY p.event_id) FROM planned AS p),
               (SELECT array_agg(p.event_id ORDER BY p.event_id) FROM planned AS p),
               (SELECT array_agg(DISTINCT g.dag_id::text ORDER BY g.dag_id::text) FROM eligible AS g)
        INTO v_missing, events, event_ids, dag_ids;
        EXIT WHEN NOT v_missing;

        -- First events of an alias or an asset: create the declared aliases that have events, then
        -- the assets first reached through an alias (created and activated, as the DAG processor
        -- would on seeing them: one activeness rule for both paths, docs/semantics.md), sorted, and
        -- plan again (once: a second pass writes whatever it finds, as the statement always did).
        INSERT INTO asset_alias (name, "group")
        SELECT DISTINCT e.source_alias_name, ''
        FROM jsonb_to_recordset(p_events) AS e (source_alias_name text)
        WHERE e.source_alias_name IN (SELECT unnest(v_aliases))
        ORDER BY 1
        ON CONFLICT (name) DO NOTHING;
        WITH created AS (
            INSERT INTO asset AS a (name, uri, "group", extra, created_at, updated_at)
            SELECT DISTINCT ON (e.dest_asset_key ->> 'name', e.dest_asset_key ->> 'uri')
                   e.dest_asset_key ->> 'name', e.dest_asset_key ->> 'uri', 'asset', coalesce(e.dest_asset_extra, '{}'), p_now, p_now
            FROM jsonb_to_recordset(p_events) AS e (source_alias_name text, dest_asset_key jsonb, dest_asset_extra jsonb)
            WHERE e.source_alias_name IN (SELECT unnest(v_aliases))
            ORDER BY e.dest_asset_key ->> 'name', e.dest_asset_key ->> 'uri', coalesce(e.dest_asset_extra, '{}')::text
            ON CONFLICT (name, uri) DO NOTHING
            RETURNING a.name, a.uri
        )
        SELECT coalesce(jsonb_agg(jsonb_build_object('name', c.name, 'uri', c.uri)), '[]') INTO v_created FROM created AS c;
        -- Airflow's scheduler owns asset_active (it activates alias-reached assets itself).
        IF NOT v_airflow THEN
            INSERT INTO asset_active (name, uri)
            SELECT c ->> 'name', c ->> 'uri' FROM jsonb_array_elements(v_created) AS c
            ORDER BY 1, 2
            ON CONFLICT DO NOTHING;
        END IF;
        v_check := false;
    END LOOP;
    events := coalesce(events, '{}');
    event_ids := coalesce(event_ids, '{}');
    dag_ids := coalesce(dag_ids, '{}');
END
$function$;

COMMENT ON FUNCTION tistate._register_outlet_events(p_ti_id uuid, p_dag_id text, p_task_id text, p_run_id text, p_map_index integer, p_try_number integer, p_run_partition_key text, p_outlets jsonb, p_events jsonb, p_now timestamp with time zone, OUT events tistate._planned_event[], OUT event_ids integer[], OUT dag_ids text[]) IS 'Insert a success''s asset events, alias-event and alias-asset links and consumer queue rows in one statement (creating aliases and assets first reached through an alias when missing); returns the events, their ids and the consumer dag ids; cost independent of event history';

CREATE FUNCTION tistate._finish_success(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_logical_date timestamp with time zone, p_owners text, p_events tistate._planned_event[], p_event_ids integer[], p_dag_ids text[])
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
    v_result   tistate.state_update_result;
BEGIN
    WITH updated AS (
        UPDATE task_instance AS ti SET
            state = 'success',
            end_date = v_end_date,
            duration = extract(epoch FROM v_end_date - ti.start_date),
            next_method = NULL,
            next_kwargs = NULL,
            rendered_map_index = CASE WHEN p_payload ? 'rendered_map_index'
                                      THEN p_payload ->> 'rendered_map_index' ELSE ti.rendered_map_index END,
            updated_at = p_now
        WHERE ti.id = p_ti_id
        RETURNING ti.dag_id, ti.task_id, ti.run_id, ti.map_index, ti.try_number, ti.hostname
    )
    INSERT INTO log (dttm, dag_id, task_id, run_id, map_index, try_number, event, logical_date, owner, extra)
    SELECT p_now, u.dag_id, u.task_id, u.run_id, u.map_index, u.try_number, 'success', p_logical_date, p_owners,
           CASE WHEN coalesce(u.hostname, '') <> '' THEN jsonb_build_object('host_name', u.hostname)::text END
    FROM updated AS u;
    PERFORM tistate._notify_events(p_events, p_ti_id);

    v_result.ti_id := p_ti_id;
    v_result.previous_state := 'running';
    v_result.new_state := 'success';
    v_result.applied := true;
    v_result.asset_event_ids := p_event_ids;
    v_result.queued_dag_ids := p_dag_ids;
    RETURN v_result;
END
$function$;

COMMENT ON FUNCTION tistate._finish_success(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_logical_date timestamp with time zone, p_owners text, p_events tistate._planned_event[], p_event_ids integer[], p_dag_ids text[]) IS 'The locked part of running -> success (either path): the row update with its audit row, then the events'' announcement';

CREATE FUNCTION tistate._apply_success(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_registered record;
BEGIN
    -- Registration under the row lock: only reached when the task became running between the
    -- unlocked look and the lock (see tistate._success_before_lock for the usual path).
    v_registered := tistate._register_outlet_events(
        (p_ctx.ti).id, (p_ctx.ti).dag_id, (p_ctx.ti).task_id, (p_ctx.ti).run_id, (p_ctx.ti).map_index,
        (p_ctx.ti).try_number, p_ctx.run_partition_key, p_payload -> 'task_outlets', p_payload -> 'outlet_events', p_now);
    RETURN tistate._finish_success((p_ctx.ti).id, p_payload, p_now, p_ctx.logical_date, p_ctx.owners,
                                   v_registered.events, v_registered.event_ids, v_registered.dag_ids);
END
$function$;

COMMENT ON FUNCTION tistate._apply_success(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone) IS 'running -> success with its asset events, alias links, consumer queue rows, audit row and notifications, all under the row lock';

CREATE FUNCTION tistate._success_before_lock(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_lock_timeout interval)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_seen       tistate._ti_context := tistate._peek_ti(p_ti_id);
    v_registered record;
    v_started    timestamptz;
    v_locked     timestamptz;
    v_state      text;
    v_try_number integer;
    v_logical_date timestamptz;
    v_owners     text;
    v_result     tistate.state_update_result;
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
        v_registered := tistate._register_outlet_events(
            p_ti_id, (v_seen.ti).dag_id, (v_seen.ti).task_id, (v_seen.ti).run_id, (v_seen.ti).map_index,
            (v_seen.ti).try_number, v_seen.run_partition_key, p_payload -> 'task_outlets', p_payload -> 'outlet_events', p_now);
        v_started := clock_timestamp();
        -- Lock the row (bounded by lock_timeout) and re-check that the same try is still running;
        -- if not, the try changed before it was locked. Two statements, so that lock_held_ms
        -- starts when the lock is granted, the row update included.
        SELECT ti.state, ti.try_number, dr.logical_date, d.owners
        INTO v_state, v_try_number, v_logical_date, v_owners
        FROM task_instance AS ti
        JOIN dag_run AS dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
        JOIN dag AS d ON d.dag_id = ti.dag_id
        WHERE ti.id = p_ti_id
        FOR UPDATE OF ti;
        v_locked := clock_timestamp();
        IF v_state IS DISTINCT FROM 'running' OR v_try_number IS DISTINCT FROM (v_seen.ti).try_number THEN
            RAISE EXCEPTION USING ERRCODE = 'TSR01', MESSAGE = 'task instance changed before it was locked';
        END IF;
        v_result := tistate._finish_success(p_ti_id, p_payload, p_now, v_logical_date, v_owners,
                                            v_registered.events, v_registered.event_ids, v_registered.dag_ids);
        v_result.lock_wait_ms := extract(epoch FROM v_locked - v_started) * 1000;
        v_result.lock_held_ms := extract(epoch FROM clock_timestamp() - v_locked) * 1000;
        RETURN v_result;
    EXCEPTION WHEN SQLSTATE 'TSR01' THEN
        RETURN NULL;  -- private code, never leaves this function
    END;
END
$function$;

COMMENT ON FUNCTION tistate._success_before_lock(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_lock_timeout interval) IS 'running -> success with the row lock held only for the row update: registration first, then lock and re-check, then the update with its audit row in one statement (NULL result: not running, answer from the locked path)';

CREATE FUNCTION tistate._run_dag_version(p_dag_id text, p_run_id text)
 RETURNS uuid
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    -- Airflow mode (PL/pgSQL: the standalone tables have no dag_version): the DAG version a run's
    -- tasks follow, as Airflow's API server picks it: the version the run was created with when
    -- the run is pinned to a bundle version, else the DAG's latest version.
    RETURN coalesce(
        (SELECT dr.created_dag_version_id FROM dag_run AS dr
         WHERE dr.dag_id = p_dag_id AND dr.run_id = p_run_id AND dr.bundle_version IS NOT NULL),
        (SELECT v.id FROM dag_version AS v WHERE v.dag_id = p_dag_id ORDER BY v.version_number DESC LIMIT 1));
END
$function$;

COMMENT ON FUNCTION tistate._run_dag_version(p_dag_id text, p_run_id text) IS 'Airflow mode: the dag_version a run follows (its created version if pinned to a bundle version, else the latest)';

CREATE FUNCTION tistate._dag_tasks(p_dag_id text, p_run_id text DEFAULT NULL, p_task_id text DEFAULT NULL)
 RETURNS TABLE(task_id text, is_teardown boolean, outlets jsonb)
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_version uuid;
    v_data    jsonb;
BEGIN
    -- The task definitions of a DAG (of the version a run follows, when given): task id, teardown
    -- flag and outlets as AssetProfile objects ({type, name, uri}).
    IF NOT tistate._is_airflow() THEN
        RETURN QUERY SELECT t.task_id::text, t.is_teardown, t.outlets FROM tistate.dag_task AS t
                     WHERE t.dag_id = p_dag_id AND (p_task_id IS NULL OR t.task_id = p_task_id);
        RETURN;
    END IF;
    -- Airflow: the serialized DAG, read as Airflow's API server reads it.
    v_version := CASE WHEN p_run_id IS NULL
                      THEN (SELECT v.id FROM dag_version AS v WHERE v.dag_id = p_dag_id
                            ORDER BY v.version_number DESC LIMIT 1)
                      ELSE tistate._run_dag_version(p_dag_id, p_run_id) END;
    SELECT sd.data INTO v_data FROM serialized_dag AS sd WHERE sd.dag_version_id = v_version;
    IF NOT FOUND THEN
        RETURN;  -- not serialized (yet): no task is known
    END IF;
    IF v_data IS NULL THEN
        PERFORM tistate._raise('TS501', format('dag %s is serialized compressed, which tistate cannot read', p_dag_id),
                               jsonb_build_object('reason', 'compressed_serialized_dag', 'dag_id', p_dag_id),
                               'set [core] compress_serialized_dags = False in Airflow');
    END IF;
    RETURN QUERY
        SELECT tv ->> 'task_id',
               coalesce((tv ->> 'is_teardown')::boolean, (tv -> 'partial_kwargs' ->> 'is_teardown')::boolean, false),
               coalesce((SELECT jsonb_agg(jsonb_build_object(
                                     'type', CASE o ->> '__type' WHEN 'asset' THEN 'Asset' WHEN 'asset_alias' THEN 'AssetAlias'
                                                 ELSE CASE WHEN ov ? 'name' THEN 'AssetNameRef' ELSE 'AssetUriRef' END END,
                                     'name', ov ->> 'name', 'uri', ov ->> 'uri') ORDER BY ord)
                         -- a mapped task keeps its outlets in partial_kwargs
                         FROM jsonb_array_elements(coalesce(tv -> 'outlets', tv -> 'partial_kwargs' -> 'outlets', '[]'))
                              WITH ORDINALITY AS x (o, ord)
                         CROSS JOIN LATERAL (SELECT coalesce(x.o -> '__var', x.o) AS ov) AS y),
                        '[]')
        FROM jsonb_array_elements(v_data -> 'dag' -> 'tasks') AS t
        CROSS JOIN LATERAL (SELECT coalesce(t -> '__var', t) AS tv) AS z
        -- one task: its outlets are built for it alone
        WHERE p_task_id IS NULL OR tv ->> 'task_id' = p_task_id;
END
$function$;

COMMENT ON FUNCTION tistate._dag_tasks(p_dag_id text, p_run_id text, p_task_id text) IS 'Task definitions (task_id, is_teardown, outlets as AssetProfiles) of a DAG (one task when p_task_id is given), or of the version a run follows: tistate.dag_task standalone, the serialized DAG in Airflow mode (TS501 when compressed)';

CREATE FUNCTION tistate._fail_fast(p_ctx tistate._ti_context, p_now timestamp with time zone)
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
      AND (ti.state IS NULL OR ti.state NOT IN ('success', 'failed', 'skipped', 'upstream_failed', 'removed'))
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
          AND (old.state IS NULL OR old.state NOT IN ('success', 'failed', 'skipped', 'upstream_failed', 'removed'))
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

COMMENT ON FUNCTION tistate._fail_fast(p_ctx tistate._ti_context, p_now timestamp with time zone) IS 'Fail-fast: the run''s other unfinished non-teardown TIs -> failed (running) or skipped, with log rows; same transaction; returns the count';

CREATE FUNCTION tistate._apply_terminal(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_state    text := p_payload ->> 'state';
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
BEGIN
    UPDATE task_instance AS ti SET
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
$function$;

COMMENT ON FUNCTION tistate._apply_terminal(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone) IS 'running -> failed (with fail-fast when the DAG sets it), skipped, removed or upstream_failed';

CREATE FUNCTION tistate._archive_try(p_ti_id uuid, p_state text, p_end_date timestamp with time zone,
                                     p_now timestamp with time zone, p_rendered_map_index text DEFAULT NULL,
                                     p_retry_delay double precision DEFAULT NULL, p_retry_reason text DEFAULT NULL)
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

CREATE FUNCTION tistate._apply_retry(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
    v_delay    double precision := (p_payload ->> 'retry_delay_seconds')::double precision;
    v_reason   text := p_payload ->> 'retry_reason';
    v_rendered text := CASE WHEN p_payload ? 'rendered_map_index'
                            THEN p_payload ->> 'rendered_map_index' ELSE (p_ctx.ti).rendered_map_index END;
    v_new_id   uuid;
BEGIN
    -- The finished try goes to history as failed; the live row is the next try, up for retry.
    v_new_id := tistate._archive_try((p_ctx.ti).id, 'failed', v_end_date, p_now, v_rendered, v_delay, v_reason);
    UPDATE task_instance AS ti SET
        state = 'up_for_retry',
        end_date = v_end_date,
        duration = extract(epoch FROM v_end_date - ti.start_date),
        next_method = NULL,
        next_kwargs = NULL,
        retry_delay_override = v_delay,
        retry_reason = v_reason,
        rendered_map_index = v_rendered,
        updated_at = p_now
    WHERE ti.id = v_new_id;

    PERFORM tistate._audit(p_ctx, 'up_for_retry', p_now);
    RETURN tistate._applied(p_ctx, 'up_for_retry', v_new_id);
END
$function$;

COMMENT ON FUNCTION tistate._apply_retry(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone) IS 'running -> up_for_retry: history row for the finished try (idempotent per try), reschedule rows deleted, retry fields, new uuid7 id';

CREATE FUNCTION tistate._apply_reschedule(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
    v_start    timestamptz := coalesce((p_ctx.ti).start_date, p_now);
BEGIN
    -- start_date is the poke's real start (task_instance.start_date), not the server's now as in
    -- Airflow, so duration is the poke's length in whole seconds, not 0 or negative.
    IF abs(extract(epoch FROM v_end_date - v_start)) > 2147483647 THEN
        PERFORM tistate._invalid('end_date', 'more than 68 years away from the try''s start_date');
    END IF;
    INSERT INTO task_reschedule (ti_id, start_date, end_date, duration, reschedule_date)
    VALUES ((p_ctx.ti).id, v_start, v_end_date, trunc(extract(epoch FROM v_end_date - v_start))::integer,
            (p_payload ->> 'reschedule_date')::timestamptz);

    UPDATE task_instance AS ti SET
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
$function$;

COMMENT ON FUNCTION tistate._apply_reschedule(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone) IS 'running -> up_for_reschedule with its task_reschedule row (start_date = the poke''s start)';

CREATE FUNCTION tistate._apply_deferred(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_trigger_id integer;
    v_seconds    double precision := (p_payload ->> 'trigger_timeout_seconds')::double precision;
BEGIN
    INSERT INTO trigger (classpath, kwargs, created_date, queue)
    VALUES (p_payload ->> 'classpath', p_payload ->> 'trigger_kwargs', p_now, p_payload ->> 'queue')
    RETURNING id INTO v_trigger_id;

    -- end_date, duration and rendered_map_index are left alone, as in Airflow.
    UPDATE task_instance AS ti SET
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
$function$;

COMMENT ON FUNCTION tistate._apply_deferred(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone) IS 'running -> deferred with its trigger row, next_method, next_kwargs and trigger_timeout = p_now + duration';

CREATE FUNCTION tistate._apply_state(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
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
$function$;

COMMENT ON FUNCTION tistate._apply_state(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone) IS 'Dispatch a validated payload to its transition; TS409 for the scheduler-only targets scheduled, queued, restarting';

CREATE FUNCTION tistate.ti_update_state(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone DEFAULT clock_timestamp(), p_lock_timeout interval DEFAULT NULL::interval)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET lock_timeout TO '2s'
AS $function$
DECLARE
    v_payload   jsonb;
    v_ctx       tistate._ti_context;
    v_started   timestamptz;
    v_locked    timestamptz;
    v_result    tistate.state_update_result;
BEGIN
    p_now := tistate._caller_now(p_now);  -- a worker uses the database clock (docs/dba.md)
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
        v_result.asset_event_ids := ARRAY(SELECT e.event_id FROM tistate.asset_event_producer AS e
                                          WHERE e.ti_id = p_ti_id AND e.try_number = (v_ctx.ti).try_number
                                          ORDER BY e.event_id);
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
$function$;

COMMENT ON FUNCTION tistate.ti_update_state(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_lock_timeout interval) IS 'The Execution API state PATCH: p_payload is Airflow''s TIStateUpdate JSON. Validates (TS422), locks the row (bounded), answers the same-state no-op (applied=false), TS404/TS410/TS409, and applies the transition atomically';

CREATE FUNCTION tistate._run_context(p_ti_id uuid, p_previous_state text)
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

CREATE FUNCTION tistate.ti_run(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone DEFAULT clock_timestamp(), p_lock_timeout interval DEFAULT NULL::interval)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path FROM CURRENT
 SET lock_timeout TO '2s'
AS $function$
DECLARE
    v_hostname   text;
    v_unixname   text;
    v_pid        integer;
    v_start_date timestamptz;
    v_ctx        tistate._ti_context;
    v_duplicate  boolean;
    v_resuming   boolean;
BEGIN
    p_now := tistate._caller_now(p_now);  -- a worker uses the database clock (docs/dba.md)
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

    UPDATE task_instance AS ti SET
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
$function$;

COMMENT ON FUNCTION tistate.ti_run(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_lock_timeout interval) IS 'queued/restarting -> running (Airflow''s TIEnterRunningPayload); idempotent for the same hostname, unixname and pid; returns the TIRunContext; TS404/TS410/TS409/TS422';
