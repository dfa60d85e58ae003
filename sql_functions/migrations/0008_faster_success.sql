-- 0008: the same success transition and heartbeat for less CPU.
--
-- A success with a handful of events cost ~3 ms of server time, almost all of it per-call and
-- per-statement overhead rather than data work: ~60 helper calls to validate the payload and ~20
-- SQL statements, each with its own executor start-up. Behaviour, errors and lock order are
-- unchanged; what changed is how the work is grouped:
-- - _normalize_success checks a well-formed payload with one statement; only a payload that fails
--   that check takes the field-by-field path, which raises exactly the TS422 it raised before. The
--   normalised payload keeps task_outlets and outlet_events as sent (validated), and
--   _register_outlet_events reads them with Airflow's defaults;
-- - _register_outlet_events plans the events, inserts them with their alias links and queues the
--   consumer DAGs in one statement (each table's rows in the same order as before, the queue after
--   the alias-asset links), and creates aliases and assets first reached through an alias only when
--   the plan finds one missing;
-- - the success path locks the row (SELECT ... FOR UPDATE, as before) and re-checks it, then
--   updates it and writes the audit row with one statement;
-- - lock_timeout is set once per call, and not at all when it is the functions' 2 s default.

------------------------------------------------------------------------------------------------
-- lock_timeout
------------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION tistate._set_lock_timeout(p_lock_timeout interval)
RETURNS void
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_value text;
BEGIN
    -- Precedence: the call's p_lock_timeout, then the GUC tistate.lock_timeout, then 2 s. The 2 s
    -- default is every locking public function's own `SET lock_timeout = '2s'` (which also restores
    -- the caller's setting on return), so nothing is set when nothing overrides it.
    -- (Assignments, not PERFORM: a plain expression skips the executor.)
    IF p_lock_timeout IS NOT NULL THEN
        v_value := set_config('lock_timeout', greatest(1, (extract(epoch FROM p_lock_timeout) * 1000)::bigint)::text, true);
    ELSIF coalesce(current_setting('tistate.lock_timeout', true), '') <> '' THEN
        v_value := set_config('lock_timeout', current_setting('tistate.lock_timeout'), true);
    END IF;
END
$$;
COMMENT ON FUNCTION tistate._set_lock_timeout(interval) IS 'Bound every lock wait of the current call';

------------------------------------------------------------------------------------------------
-- Dispatch: most payloads are successes; they skip the discriminator's generic checks
------------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION tistate._normalize_state_payload(p_payload jsonb)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
AS $$
DECLARE
    v_state text;
BEGIN
    IF jsonb_typeof(p_payload) = 'object' AND p_payload -> 'state' = '"success"'::jsonb THEN
        RETURN tistate._normalize_success(p_payload);
    END IF;
    v_state := tistate._payload_state(p_payload);
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
-- Validation: one statement for a well-formed payload
------------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION tistate._normalize_success(p_payload jsonb)
RETURNS jsonb
LANGUAGE plpgsql
STABLE
AS $$
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
    FOR v_i IN 0 .. jsonb_array_length(v_outlets) - 1 LOOP
        PERFORM tistate._asset_profile(v_outlets -> v_i, format('task_outlets[%s]', v_i));
    END LOOP;
    v_events := tistate._array(p_payload -> 'outlet_events', 'outlet_events');
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
$$;
COMMENT ON FUNCTION tistate._normalize_success(jsonb) IS 'Validate (TS422) and normalise a TISuccessStatePayload';

------------------------------------------------------------------------------------------------
-- Registration: plan, insert and queue in one statement
------------------------------------------------------------------------------------------------
DROP FUNCTION tistate._register_outlet_events(tistate._ti_context, jsonb, jsonb, timestamptz);

-- The consumer rule, in one place: DAGs scheduled on the asset, on an alias that emitted the event,
-- or on the asset's name or uri; never paused, stale or partition-aware DAGs. A plain SQL function
-- (STABLE, no SET clause, one SELECT), so the planner inlines it into the statements that use it.
CREATE FUNCTION tistate._consumers_of(p_asset_id integer, p_name text, p_uri text, p_alias_ids integer[])
RETURNS SETOF text
LANGUAGE sql
STABLE
AS $$
    -- Driven by the schedule references of this asset, its aliases, name and uri (indexed), never by
    -- a scan of all DAGs.
    SELECT d.dag_id::text
    FROM (SELECT r.dag_id FROM tistate.dag_schedule_asset_reference AS r WHERE r.asset_id = p_asset_id
          UNION
          SELECT r.dag_id FROM tistate.dag_schedule_asset_alias_reference AS r WHERE r.alias_id = ANY (p_alias_ids)
          UNION
          SELECT r.dag_id FROM tistate.dag_schedule_asset_name_reference AS r WHERE r.name = p_name
          UNION
          SELECT r.dag_id FROM tistate.dag_schedule_asset_uri_reference AS r WHERE r.uri = p_uri) AS c
    JOIN tistate.dag AS d ON d.dag_id = c.dag_id
    WHERE NOT d.is_paused AND NOT d.is_stale AND NOT d.timetable_partitioned
$$;
COMMENT ON FUNCTION tistate._consumers_of(integer, text, text, integer[]) IS
    'The DAGs an event of this asset (emitted through these aliases) queues: scheduled on the asset, an alias, its name or uri; not paused, stale or partition-aware';

CREATE OR REPLACE FUNCTION tistate._queue_consumers(p_events tistate._planned_event[], p_now timestamptz)
RETURNS text[]
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_dag_ids text[];
BEGIN
    -- Events with a partition key never go to asset_dag_run_queue (Airflow reference 4.6). Rows are
    -- inserted sorted by (asset_id, target_dag_id), so concurrent callers take the queue's key locks
    -- in the same order and cannot deadlock.
    WITH eligible AS (
        SELECT DISTINCT e.asset_id, c.dag_id
        FROM unnest(p_events) AS e
        JOIN tistate.asset AS a ON a.id = e.asset_id
        CROSS JOIN LATERAL tistate._consumers_of(e.asset_id, a.name, a.uri, e.alias_ids) AS c (dag_id)
        WHERE e.partition_key IS NULL
    ),
    queued AS (
        INSERT INTO tistate.asset_dag_run_queue (asset_id, target_dag_id, created_at)
        SELECT g.asset_id, g.dag_id, p_now FROM eligible AS g
        ORDER BY g.asset_id, g.dag_id
        ON CONFLICT DO NOTHING
    )
    SELECT coalesce(array_agg(DISTINCT g.dag_id ORDER BY g.dag_id), '{}') INTO v_dag_ids FROM eligible AS g;
    RETURN v_dag_ids;
END
$$;
COMMENT ON FUNCTION tistate._queue_consumers(tistate._planned_event[], timestamptz) IS
    'Queue the consumer DAGs (tistate._consumers_of) of planned events in asset_dag_run_queue (sorted, ON CONFLICT DO NOTHING); returns the consumer dag ids';

CREATE FUNCTION tistate._register_outlet_events(
    p_ti_id             uuid,
    p_dag_id            text,
    p_task_id           text,
    p_run_id            text,
    p_map_index         integer,
    p_try_number        integer,
    p_run_partition_key text,
    p_outlets           jsonb,
    p_events            jsonb,
    p_now               timestamptz,
    OUT events          tistate._planned_event[],
    OUT event_ids       integer[],
    OUT dag_ids         text[]
)
LANGUAGE plpgsql
VOLATILE
-- Plan once per session: custom plans would re-plan this large statement on every call.
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    v_aliases jsonb;
    v_check   boolean := true;
    v_missing boolean;
BEGIN
    -- p_outlets and p_events are validated by _normalize_success: arrays of Airflow's AssetProfile
    -- and outlet event objects, read here with Airflow's defaults (absent or null extra = {}).
    events := '{}';
    event_ids := '{}';
    dag_ids := '{}';
    -- Events for outlets the task did not declare are ignored, as in Airflow; so with no outlets
    -- there is nothing to register.
    IF jsonb_array_length(p_outlets) = 0 THEN
        RETURN;
    END IF;
    -- The aliases the task declared: only their alias events count.
    v_aliases := jsonb_path_query_array(p_outlets, '$[*] ? (@.type == "AssetAlias").name');

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
            SELECT DISTINCT a.id, a.name, a.uri
            FROM jsonb_to_recordset(p_outlets) AS o (type text, name text, uri text)
            JOIN tistate.asset_active AS act
              ON (o.type IN ('Asset', 'AssetNameRef') AND act.name = o.name AND (o.type = 'AssetNameRef' OR act.uri = o.uri))
              OR (o.type = 'AssetUriRef' AND act.uri = o.uri)
            JOIN tistate.asset AS a ON a.name = act.name AND a.uri = act.uri
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
            SELECT e.name, e.uri, e.extra, array_agg(DISTINCT e.alias) AS aliases, min(e.ord) AS ord
            FROM payload_events AS e
            WHERE v_aliases @> to_jsonb(e.alias)
            GROUP BY e.name, e.uri, e.asset_extra, e.extra
        ),
        via_alias AS (
            SELECT a.id AS asset_id, g.name, g.uri, g.extra, p_run_partition_key AS partition_key,
                   ARRAY(SELECT al.id FROM tistate.asset_alias AS al WHERE al.name = ANY (g.aliases) ORDER BY al.id) AS alias_ids,
                   2 AS kind, g.ord, act.name IS NOT NULL AS active, cardinality(g.aliases) AS alias_count
            FROM alias_groups AS g
            LEFT JOIN tistate.asset AS a ON a.name = g.name AND a.uri = g.uri
            LEFT JOIN tistate.asset_active AS act ON act.name = g.name AND act.uri = g.uri
        ),
        -- An alias, or an asset first reached through an alias, that does not exist yet: nothing is
        -- written, they are created below and the statement runs again.
        missing AS (
            SELECT v_check AND coalesce(bool_or(v.asset_id IS NULL OR cardinality(v.alias_ids) < v.alias_count), false) AS found
            FROM via_alias AS v
        ),
        -- Event ids in a fixed order: direct events, then alias events, by asset and payload position.
        planned AS MATERIALIZED (
            SELECT nextval('tistate.asset_event_id_seq')::integer AS event_id, p.asset_id, p.name, p.uri, p.extra,
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
            INSERT INTO tistate.asset_event (id, asset_id, extra, source_task_id, source_dag_id, source_run_id,
                                             source_map_index, "timestamp", partition_key, ti_id, try_number)
            SELECT p.event_id, p.asset_id, p.extra, p_task_id, p_dag_id, p_run_id,
                   p_map_index, p_now, p.partition_key, p_ti_id, p_try_number
            FROM planned AS p
            ORDER BY p.event_id
        ),
        new_links AS (
            INSERT INTO tistate.asset_alias_asset_event (alias_id, event_id)
            SELECT al.id, p.event_id
            FROM planned AS p CROSS JOIN unnest(p.alias_ids) AS al (id)
            ORDER BY 1, 2
        ),
        new_alias_assets AS (
            INSERT INTO tistate.asset_alias_asset (alias_id, asset_id)
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
        -- so concurrent completions cannot deadlock.
        queued AS (
            INSERT INTO tistate.asset_dag_run_queue (asset_id, target_dag_id, created_at)
            SELECT g.asset_id, g.dag_id, p_now FROM eligible AS g
            WHERE (SELECT count(*) FROM new_alias_assets) >= 0
            ORDER BY g.asset_id, g.dag_id
            ON CONFLICT DO NOTHING
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
        INSERT INTO tistate.asset_alias (name)
        SELECT DISTINCT e.source_alias_name
        FROM jsonb_to_recordset(p_events) AS e (source_alias_name text)
        WHERE v_aliases @> to_jsonb(e.source_alias_name)
        ORDER BY 1
        ON CONFLICT (name) DO NOTHING;
        WITH created AS (
            INSERT INTO tistate.asset AS a (name, uri, "group", extra, created_at, updated_at)
            SELECT DISTINCT ON (e.dest_asset_key ->> 'name', e.dest_asset_key ->> 'uri')
                   e.dest_asset_key ->> 'name', e.dest_asset_key ->> 'uri', 'asset', coalesce(e.dest_asset_extra, '{}'), p_now, p_now
            FROM jsonb_to_recordset(p_events) AS e (source_alias_name text, dest_asset_key jsonb, dest_asset_extra jsonb)
            WHERE v_aliases @> to_jsonb(e.source_alias_name)
            ORDER BY e.dest_asset_key ->> 'name', e.dest_asset_key ->> 'uri', coalesce(e.dest_asset_extra, '{}')::text
            ON CONFLICT (name, uri) DO NOTHING
            RETURNING a.name, a.uri
        )
        INSERT INTO tistate.asset_active (name, uri)
        SELECT c.name, c.uri FROM created AS c ORDER BY 1, 2
        ON CONFLICT DO NOTHING;
        v_check := false;
    END LOOP;
    events := coalesce(events, '{}');
    event_ids := coalesce(event_ids, '{}');
    dag_ids := coalesce(dag_ids, '{}');
END
$$;
COMMENT ON FUNCTION tistate._register_outlet_events(uuid, text, text, text, integer, integer, text, jsonb, jsonb, timestamptz) IS
    'Insert a success''s asset events, alias-event and alias-asset links and consumer queue rows in one statement (creating aliases and assets first reached through an alias when missing); returns the events, their ids and the consumer dag ids; cost independent of event history';

------------------------------------------------------------------------------------------------
-- The success transition
------------------------------------------------------------------------------------------------
-- The locked part of running -> success, for both paths: the row update and its audit row in one
-- statement, then the events' announcement.
DROP FUNCTION tistate._finish_success(tistate._ti_context, jsonb, tistate._planned_event[], text[], timestamptz);
CREATE FUNCTION tistate._finish_success(
    p_ti_id        uuid,
    p_payload      jsonb,
    p_now          timestamptz,
    p_logical_date timestamptz,
    p_owners       text,
    p_events       tistate._planned_event[],
    p_event_ids    integer[],
    p_dag_ids      text[]
)
RETURNS tistate.state_update_result
LANGUAGE plpgsql
VOLATILE
AS $$
DECLARE
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
    v_result   tistate.state_update_result;
BEGIN
    WITH updated AS (
        UPDATE tistate.task_instance AS ti SET
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
    INSERT INTO tistate.log (dttm, dag_id, task_id, run_id, map_index, try_number, event, logical_date, owner, extra)
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
$$;
COMMENT ON FUNCTION tistate._finish_success(uuid, jsonb, timestamptz, timestamptz, text, tistate._planned_event[], integer[], text[]) IS
    'The locked part of running -> success (either path): the row update with its audit row, then the events'' announcement';

CREATE OR REPLACE FUNCTION tistate._apply_success(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamptz)
RETURNS tistate.state_update_result
LANGUAGE plpgsql
VOLATILE
AS $$
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
$$;
COMMENT ON FUNCTION tistate._apply_success(tistate._ti_context, jsonb, timestamptz) IS
    'running -> success with its asset events, alias links, consumer queue rows, audit row and notifications, all under the row lock';

CREATE OR REPLACE FUNCTION tistate._success_before_lock(
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
        FROM tistate.task_instance AS ti
        JOIN tistate.dag_run AS dr ON dr.dag_id = ti.dag_id AND dr.run_id = ti.run_id
        JOIN tistate.dag AS d ON d.dag_id = ti.dag_id
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
$$;
COMMENT ON FUNCTION tistate._success_before_lock(uuid, jsonb, timestamptz, interval) IS
    'running -> success with the row lock held only for the row update: registration first, then lock and re-check, then the update with its audit row in one statement (NULL result: not running, answer from the locked path)';

CREATE OR REPLACE FUNCTION tistate.ti_update_state(
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
-- ti_heartbeat
------------------------------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION tistate.ti_heartbeat(
    p_ti_id        uuid,
    p_hostname     text,
    p_pid          integer,
    p_now          timestamptz DEFAULT clock_timestamp(),
    p_lock_timeout interval DEFAULT NULL
)
RETURNS void
LANGUAGE plpgsql
VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, tistate, pg_temp
SET lock_timeout = '2s'
AS $$
DECLARE
    v_state    text;
    v_hostname text;
    v_pid      integer;
    v_message  text;
BEGIN
    IF p_hostname IS NULL THEN
        PERFORM tistate._invalid('hostname', 'field required');
    END IF;
    IF p_pid IS NULL THEN
        PERFORM tistate._invalid('pid', 'field required');
    END IF;
    PERFORM tistate._set_lock_timeout(p_lock_timeout);

    -- Fast path: one conditional UPDATE. Its row lock wait is bounded by lock_timeout (55P03).
    UPDATE tistate.task_instance AS ti SET last_heartbeat_at = p_now, updated_at = p_now
    WHERE ti.id = p_ti_id AND ti.state = 'running' AND ti.hostname = p_hostname AND ti.pid = p_pid;
    IF FOUND THEN
        RETURN;
    END IF;

    -- Slow path: explain why.
    SELECT ti.state, ti.hostname, ti.pid INTO v_state, v_hostname, v_pid
    FROM tistate.task_instance AS ti WHERE ti.id = p_ti_id
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
    UPDATE tistate.task_instance AS ti SET last_heartbeat_at = p_now, updated_at = p_now WHERE ti.id = p_ti_id;
END
$$;
COMMENT ON FUNCTION tistate.ti_heartbeat(uuid, text, integer, timestamptz, interval) IS
    'Heartbeat of a running try: one conditional UPDATE; else TS404 / TS410 / TS409 (running_elsewhere with current_hostname and current_pid, or not_running with current_state); lock wait bounded (55P03)';

------------------------------------------------------------------------------------------------
-- Privileges: the new helper is private, like every helper.
------------------------------------------------------------------------------------------------
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA tistate FROM PUBLIC;
