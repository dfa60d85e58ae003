-- The success path, reshaped. Every success with the same consumers updates the same queue rows
-- (asset_dag_run_queue: created_at takes the newest event's time), and an updated row stays locked
-- until commit, so concurrent successes pass through those rows one at a time: the less a
-- transaction does after them, the more successes per second. They are now the last write of a
-- success: after the events, links and outbox row (the registration), the task-instance row's
-- update (which locks the row itself: no separate locking read, no join, since the unlocked look
-- already read its run and DAG) and the audit row. A completion waiting for them holds its own row,
-- so that task's heartbeat waits for it (docs/semantics.md, step 8). Also: one TI/run/DAG join
-- (tistate._peek_ti), one audit writer (tistate._audit), one row update for every outcome
-- (tistate._end_try).
SELECT set_config('search_path', tistate._function_search_path(), true);

CREATE OR REPLACE FUNCTION tistate._lock_ti(p_ti_id uuid, p_lock_timeout interval DEFAULT NULL::interval)
 RETURNS tistate._ti_context
 LANGUAGE plpgsql
AS $function$
BEGIN
    PERFORM tistate._set_lock_timeout(p_lock_timeout);
    PERFORM FROM task_instance AS ti WHERE ti.id = p_ti_id FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tistate._raise_missing_ti(p_ti_id);
    END IF;
    RETURN tistate._peek_ti(p_ti_id);
END
$function$;

CREATE FUNCTION tistate._queue_rows(p_asset_ids integer[], p_dag_ids text[], p_stamp timestamp with time zone)
 RETURNS void
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
BEGIN
    -- (A generic plan: the custom plan for each pair of arrays was re-planned on every call, 0.19 ms
    -- against 0.12 ms.) Sorted by (asset_id, target_dag_id), so concurrent callers take the queue's row locks in the
    -- same order and cannot deadlock. A row already queued takes the newer time: Airflow's scheduler
    -- consumes events up to it, so a burst is consumed whole (Airflow keeps the first event's time
    -- and leaves the rest of the burst behind).
    IF cardinality(p_asset_ids) > 0 THEN
        INSERT INTO asset_dag_run_queue AS q (asset_id, target_dag_id, created_at)
        SELECT r.asset_id, r.dag_id, p_stamp
        FROM unnest(p_asset_ids, p_dag_ids) AS r (asset_id, dag_id)
        ORDER BY r.asset_id, r.dag_id
        ON CONFLICT (asset_id, target_dag_id) DO UPDATE SET created_at = greatest(q.created_at, excluded.created_at);
    END IF;
END
$function$;

COMMENT ON FUNCTION tistate._queue_rows(p_asset_ids integer[], p_dag_ids text[], p_stamp timestamp with time zone) IS 'Upsert the queue rows (asset_id, target_dag_id) pairwise from two arrays, sorted; an existing row takes the newer created_at';

CREATE OR REPLACE FUNCTION tistate._queue_consumers(p_events tistate._planned_event[], p_now timestamp with time zone)
 RETURNS text[]
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_asset_ids integer[];
    v_dag_ids   text[];
BEGIN
    -- Events with a partition key never go to asset_dag_run_queue (Airflow reference 4.6).
    SELECT array_agg(g.asset_id ORDER BY g.asset_id, g.dag_id), array_agg(g.dag_id ORDER BY g.asset_id, g.dag_id)
    INTO v_asset_ids, v_dag_ids
    FROM (SELECT DISTINCT e.asset_id, c.dag_id
          FROM unnest(p_events) AS e
          JOIN asset AS a ON a.id = e.asset_id
          CROSS JOIN LATERAL tistate._consumers_of(e.asset_id, a.name, a.uri, e.alias_ids) AS c (dag_id)
          WHERE e.partition_key IS NULL) AS g;
    PERFORM tistate._queue_rows(coalesce(v_asset_ids, '{}'), coalesce(v_dag_ids, '{}'), p_now);
    RETURN ARRAY(SELECT DISTINCT d FROM unnest(v_dag_ids) AS d ORDER BY d);
END
$function$;

-- The registration returns the queue rows (and the events' stamp) instead of writing them.
DROP FUNCTION tistate._register_outlet_events(uuid, text, text, text, integer, integer, text, jsonb, jsonb, timestamp with time zone);

CREATE FUNCTION tistate._register_outlet_events(p_ti_id uuid, p_dag_id text, p_task_id text, p_run_id text, p_map_index integer, p_try_number integer, p_run_partition_key text, p_outlets jsonb, p_events jsonb, p_now timestamp with time zone, OUT events tistate._planned_event[], OUT event_ids integer[], OUT dag_ids text[], OUT queue_asset_ids integer[], OUT queue_dag_ids text[], OUT stamp timestamp with time zone)
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
    queue_asset_ids := '{}';
    queue_dag_ids := '{}';
    stamp := p_now;
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
        -- Consumers of the events without a partition key (tistate._consumers_of, inlined); their
        -- queue rows are written last, by tistate._finish_success.
        eligible AS (
            SELECT DISTINCT p.asset_id, c.dag_id
            FROM planned AS p
            CROSS JOIN LATERAL tistate._consumers_of(p.asset_id, p.name, p.uri, p.alias_ids) AS c (dag_id)
            WHERE p.partition_key IS NULL
        )
        SELECT (SELECT m.found FROM missing AS m),
               (SELECT array_agg(ROW(p.event_id, p.asset_id, p.extra, p.partition_key, p.alias_ids)::tistate._planned_event
                                 ORDER BY p.event_id) FROM planned AS p),
               (SELECT array_agg(p.event_id ORDER BY p.event_id) FROM planned AS p),
               (SELECT array_agg(DISTINCT g.dag_id::text ORDER BY g.dag_id::text) FROM eligible AS g),
               (SELECT array_agg(g.asset_id ORDER BY g.asset_id, g.dag_id) FROM eligible AS g),
               (SELECT array_agg(g.dag_id::text ORDER BY g.asset_id, g.dag_id) FROM eligible AS g)
        INTO v_missing, events, event_ids, dag_ids, queue_asset_ids, queue_dag_ids;
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
    queue_asset_ids := coalesce(queue_asset_ids, '{}');
    queue_dag_ids := coalesce(queue_dag_ids, '{}');
    stamp := v_stamp;
    PERFORM tistate._notify_events(events, p_ti_id);
END
$function$;


COMMENT ON FUNCTION tistate._register_outlet_events(p_ti_id uuid, p_dag_id text, p_task_id text, p_run_id text, p_map_index integer, p_try_number integer, p_run_partition_key text, p_outlets jsonb, p_events jsonb, p_now timestamp with time zone, OUT events tistate._planned_event[], OUT event_ids integer[], OUT dag_ids text[], OUT queue_asset_ids integer[], OUT queue_dag_ids text[], OUT stamp timestamp with time zone) IS 'Insert a success''s asset events, producers, alias-event and alias-asset links in one statement (creating aliases and assets first reached through an alias when missing) and announce them; returns the events, their ids, the consumer dag ids, the queue rows to write (asset and dag ids pairwise, sorted) and the events'' stamp; cost independent of event history';

-- _finish_success takes the task instance (for _audit); the row update is _end_try, the
-- announcement part of the registration.
DROP FUNCTION tistate._finish_success(uuid, jsonb, timestamp with time zone, timestamp with time zone, text, tistate._planned_event[], integer[], text[]);

CREATE FUNCTION tistate._end_try(p_ti_id uuid, p_try_number integer, p_payload jsonb, p_now timestamp with time zone)
 RETURNS boolean
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_end_date timestamptz := (p_payload ->> 'end_date')::timestamptz;
BEGIN
    -- A worker's outcome (success, or a TITerminalStatePayload's state) on the row of one running
    -- try; FALSE when the row is not that running try (nothing changed). The UPDATE locks the row.
    UPDATE task_instance AS ti SET
        state = p_payload ->> 'state',
        end_date = v_end_date,
        duration = extract(epoch FROM v_end_date - ti.start_date),
        next_method = NULL,
        next_kwargs = NULL,
        rendered_map_index = CASE WHEN p_payload ? 'rendered_map_index'
                                  THEN p_payload ->> 'rendered_map_index' ELSE ti.rendered_map_index END,
        updated_at = p_now
    WHERE ti.id = p_ti_id AND ti.state = 'running' AND ti.try_number = p_try_number;
    RETURN FOUND;
END
$function$;

COMMENT ON FUNCTION tistate._end_try(p_ti_id uuid, p_try_number integer, p_payload jsonb, p_now timestamp with time zone) IS 'The row update of running -> the payload''s finished state (end_date, duration, rendered_map_index; deferral fields cleared) for one running try; FALSE when the row is not that running try';

CREATE OR REPLACE FUNCTION tistate._apply_terminal(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_state text := p_payload ->> 'state';
BEGIN
    PERFORM tistate._end_try((p_ctx.ti).id, (p_ctx.ti).try_number, p_payload, p_now);
    PERFORM tistate._audit(p_ctx, v_state, p_now);
    IF v_state = 'failed' AND p_ctx.fail_fast THEN
        PERFORM tistate._fail_fast(p_ctx, p_now);
    END IF;
    RETURN tistate._applied(p_ctx, v_state);
END
$function$;

CREATE FUNCTION tistate._finish_success(p_ctx tistate._ti_context, p_now timestamp with time zone, p_registered record)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_result tistate.state_update_result;
BEGIN
    -- After the row update (tistate._end_try), under its lock: the audit row, then the
    -- queue rows, last before the commit (their locks are the ones other successes wait for).
    PERFORM tistate._audit(p_ctx, 'success', p_now);
    PERFORM tistate._queue_rows(p_registered.queue_asset_ids, p_registered.queue_dag_ids, p_registered.stamp);
    v_result.ti_id := (p_ctx.ti).id;
    v_result.previous_state := 'running';
    v_result.new_state := 'success';
    v_result.applied := true;
    v_result.asset_event_ids := p_registered.event_ids;
    v_result.queued_dag_ids := p_registered.dag_ids;
    RETURN v_result;
END
$function$;

COMMENT ON FUNCTION tistate._finish_success(p_ctx tistate._ti_context, p_now timestamp with time zone, p_registered record) IS 'The end of running -> success (either path, after the registration and the row update): the audit row, then the consumer queue rows (last: other successes wait for their locks until commit), and the result';

CREATE OR REPLACE FUNCTION tistate._apply_success(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
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
    PERFORM tistate._end_try((p_ctx.ti).id, (p_ctx.ti).try_number, p_payload, p_now);
    RETURN tistate._finish_success(p_ctx, p_now, v_registered);
END
$function$;

CREATE OR REPLACE FUNCTION tistate._success_before_lock(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_lock_timeout interval)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_seen       tistate._ti_context := tistate._peek_ti(p_ti_id);
    v_registered record;
    v_started    timestamptz;
    v_locked     timestamptz;
    v_result     tistate.state_update_result;
BEGIN
    -- The row lock is what heartbeats and a worker's retries wait on, so it is taken late: the events
    -- and links are written first, in this same transaction; the row is locked by its update, then
    -- only the audit row and the queue rows (last: the contended ones) follow. If the try is no
    -- longer running once locked (a concurrent call won), the subtransaction undoes the
    -- registration and the caller answers from the locked row.
    IF (v_seen.ti).state IS DISTINCT FROM 'running' THEN
        RETURN v_result;
    END IF;
    PERFORM tistate._set_lock_timeout(p_lock_timeout);  -- the registration may wait too
    BEGIN
        v_registered := tistate._register_outlet_events(
            p_ti_id, (v_seen.ti).dag_id, (v_seen.ti).task_id, (v_seen.ti).run_id, (v_seen.ti).map_index,
            (v_seen.ti).try_number, v_seen.run_partition_key, p_payload -> 'task_outlets', p_payload -> 'outlet_events', p_now);
        -- Lock and update the row in one statement (bounded by lock_timeout), if the same try is
        -- still running (re-checked on the row as it is once locked): then what the unlocked look
        -- read of it, its run and DAG still holds. The row lock is held from here to commit.
        v_started := clock_timestamp();
        IF NOT tistate._end_try((v_seen.ti).id, (v_seen.ti).try_number, p_payload, p_now) THEN
            RAISE EXCEPTION USING ERRCODE = 'TSR01', MESSAGE = 'task instance changed before it was locked';
        END IF;
        v_locked := clock_timestamp();
        v_result := tistate._finish_success(v_seen, p_now, v_registered);
        v_result.lock_wait_ms := extract(epoch FROM v_locked - v_started) * 1000;
        v_result.lock_held_ms := extract(epoch FROM clock_timestamp() - v_locked) * 1000;
        RETURN v_result;
    EXCEPTION WHEN SQLSTATE 'TSR01' THEN
        RETURN NULL;  -- private code, never leaves this function
    END;
END
$function$;

COMMENT ON FUNCTION tistate._success_before_lock(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_lock_timeout interval) IS 'running -> success: the registration first, then the row update (which locks the row and re-checks the try), the audit row and the queue rows last (NULL result: not that running try, answer from the locked path)';

COMMENT ON FUNCTION tistate._queue_consumers(p_events tistate._planned_event[], p_now timestamp with time zone) IS 'Queue the consumer DAGs (tistate._consumers_of) of planned events without a partition key (tistate._queue_rows: sorted, a pending row takes the newer time); returns the consumer dag ids';

SELECT tistate._settle_privileges();
