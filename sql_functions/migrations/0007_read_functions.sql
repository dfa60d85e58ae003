SELECT set_config('search_path', tistate._function_search_path(), true);

CREATE FUNCTION tistate._asset_event_rows(p_event_ids integer[])
 RETURNS TABLE(id integer, asset_id integer, name text, uri text, extra jsonb, source_dag_id text, source_task_id text, source_run_id text, source_map_index integer, "timestamp" timestamp with time zone, partition_key text, ti_id uuid, try_number integer, aliases text[])
 LANGUAGE sql
 STABLE
AS $function$
    SELECT e.id, e.asset_id, a.name::text, a.uri::text, e.extra::jsonb, e.source_dag_id::text,
           e.source_task_id::text, e.source_run_id::text, e.source_map_index, e."timestamp",
           e.partition_key::text, p.ti_id, p.try_number,
           ARRAY(SELECT al.name::text FROM asset_alias_asset_event AS l
                 JOIN asset_alias AS al ON al.id = l.alias_id
                 WHERE l.event_id = e.id ORDER BY al.name)
    FROM unnest(p_event_ids) WITH ORDINALITY AS x (event_id, ord)
    JOIN asset_event AS e ON e.id = x.event_id
    LEFT JOIN tistate.asset_event_producer AS p ON p.event_id = e.id
    -- No FK from asset_event to asset (events outlive assets): a missing asset reads as ''.
    LEFT JOIN asset AS a ON a.id = e.asset_id
    ORDER BY x.ord;
$function$;

COMMENT ON FUNCTION tistate._asset_event_rows(p_event_ids integer[]) IS 'Asset events by id, in the given order, with their asset''s name and uri and the aliases that emitted them';

CREATE FUNCTION tistate.ti_get(p_ti_id uuid, p_log_limit integer DEFAULT 20)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path FROM CURRENT
AS $function$
DECLARE
    v_ti        task_instance;
    v_try_ids   uuid[];
    v_event_ids integer[];
BEGIN
    PERFORM tistate._check_limit(p_log_limit, 'log_limit', 1000);
    SELECT ti.* INTO v_ti FROM task_instance AS ti WHERE ti.id = p_ti_id;
    IF NOT FOUND THEN
        PERFORM tistate._raise_missing_ti(p_ti_id);
    END IF;
    -- Every try of this task instance: the current id and the ids archived by retries.
    v_try_ids := ARRAY[v_ti.id] || ARRAY(
        SELECT h.task_instance_id FROM task_instance_history AS h
        WHERE h.dag_id = v_ti.dag_id AND h.task_id = v_ti.task_id AND h.run_id = v_ti.run_id
          AND h.map_index = v_ti.map_index
        ORDER BY h.try_number);
    v_event_ids := ARRAY(SELECT p.event_id FROM tistate.asset_event_producer AS p
                         WHERE p.ti_id = ANY (v_try_ids) ORDER BY p.event_id);

    RETURN jsonb_build_object(
        'task_instance', to_jsonb(v_ti) - 'executor_config',
        'dag_run', (SELECT jsonb_build_object(
                        'id', dr.id, 'dag_id', dr.dag_id, 'run_id', dr.run_id, 'state', dr.state,
                        'run_type', dr.run_type, 'logical_date', dr.logical_date, 'run_after', dr.run_after,
                        'start_date', dr.start_date, 'end_date', dr.end_date, 'conf', dr.conf,
                        'partition_key', dr.partition_key)
                    FROM dag_run AS dr WHERE dr.dag_id = v_ti.dag_id AND dr.run_id = v_ti.run_id),
        'asset_events', (SELECT coalesce(jsonb_agg(to_jsonb(r) ORDER BY r.id), '[]')
                         FROM tistate._asset_event_rows(v_event_ids) AS r),
        'alias_links', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                'alias_id', al.id, 'alias', al.name, 'event_id', l.event_id,
                                'asset_id', e.asset_id, 'name', a.name, 'uri', a.uri)
                            ORDER BY l.event_id, al.name), '[]')
                        FROM asset_alias_asset_event AS l
                        JOIN asset_alias AS al ON al.id = l.alias_id
                        JOIN asset_event AS e ON e.id = l.event_id
                        LEFT JOIN asset AS a ON a.id = e.asset_id
                        WHERE l.event_id = ANY (v_event_ids)),
        -- Queue rows of the assets this TI produced events for (a row may also stem from another
        -- producer of the same asset: the queue is keyed by asset and consumer DAG).
        'queued_consumers', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                     'asset_id', q.asset_id, 'name', a.name, 'uri', a.uri,
                                     'target_dag_id', q.target_dag_id, 'created_at', q.created_at)
                                 ORDER BY q.asset_id, q.target_dag_id), '[]')
                             FROM asset_dag_run_queue AS q
                             JOIN asset AS a ON a.id = q.asset_id
                             WHERE q.asset_id IN (SELECT e.asset_id FROM asset_event AS e
                                                  WHERE e.id = ANY (v_event_ids))),
        'log', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                        'id', g.id, 'dttm', g.dttm, 'event', g.event, 'try_number', g.try_number,
                        'owner', g.owner, 'extra', g.extra) ORDER BY g.id DESC), '[]')
                FROM (SELECT * FROM log AS l
                      WHERE l.dag_id = v_ti.dag_id AND l.task_id = v_ti.task_id AND l.run_id = v_ti.run_id
                        AND l.map_index = v_ti.map_index
                      ORDER BY l.id DESC
                      LIMIT p_log_limit) AS g),
        'history', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                            'task_instance_id', h.task_instance_id, 'try_number', h.try_number,
                            'state', h.state, 'start_date', h.start_date, 'end_date', h.end_date,
                            'duration', h.duration, 'hostname', h.hostname, 'retry_reason', h.retry_reason)
                        ORDER BY h.try_number), '[]')
                    FROM task_instance_history AS h
                    WHERE h.dag_id = v_ti.dag_id AND h.task_id = v_ti.task_id AND h.run_id = v_ti.run_id
                      AND h.map_index = v_ti.map_index));
END
$function$;

COMMENT ON FUNCTION tistate.ti_get(p_ti_id uuid, p_log_limit integer) IS 'One task instance as a document: {task_instance, dag_run, asset_events (of every try), alias_links, queued_consumers, log (newest p_log_limit rows), history (archived tries)}; TS404 / TS410 (archived id) / TS422';

CREATE FUNCTION tistate.ti_list(p_dag_id text DEFAULT NULL::text, p_run_id text DEFAULT NULL::text, p_state text DEFAULT NULL::text, p_limit integer DEFAULT 100)
 RETURNS TABLE(id uuid, dag_id text, run_id text, task_id text, map_index integer, state text, try_number integer, max_tries integer, hostname text, start_date timestamp with time zone, end_date timestamp with time zone, duration double precision, updated_at timestamp with time zone)
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path FROM CURRENT
AS $function$
BEGIN
    PERFORM tistate._check_limit(p_limit, 'limit', 10000);
    RETURN QUERY
    SELECT ti.id, ti.dag_id::text, ti.run_id::text, ti.task_id::text, ti.map_index, ti.state::text,
           ti.try_number, ti.max_tries, ti.hostname::text, ti.start_date, ti.end_date, ti.duration,
           ti.updated_at
    FROM task_instance AS ti
    WHERE (p_dag_id IS NULL OR ti.dag_id = p_dag_id)
      AND (p_run_id IS NULL OR ti.run_id = p_run_id)
      -- 'none' selects task instances without a state
      AND (p_state IS NULL OR ti.state IS NOT DISTINCT FROM nullif(p_state, 'none'))
    ORDER BY ti.dag_id, ti.run_id, ti.task_id, ti.map_index
    LIMIT p_limit;
END
$function$;

COMMENT ON FUNCTION tistate.ti_list(p_dag_id text, p_run_id text, p_state text, p_limit integer) IS 'Task instances filtered by dag, run and state (''none'' for no state), ordered by dag_id, run_id, task_id, map_index; at most p_limit (0..10000, else TS422)';

CREATE FUNCTION tistate.dag_list()
 RETURNS TABLE(dag_id text, owners text, is_paused boolean, is_stale boolean, fail_fast boolean, task_count integer, run_count integer, schedule jsonb, outlets jsonb)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path FROM CURRENT
AS $function$
    SELECT d.dag_id::text, d.owners::text, d.is_paused, d.is_stale, d.fail_fast,
           (SELECT count(*)::integer FROM tistate._dag_tasks(d.dag_id) AS t),
           (SELECT count(*)::integer FROM dag_run AS r WHERE r.dag_id = d.dag_id),
           jsonb_build_object(
               'assets', (SELECT coalesce(jsonb_agg(jsonb_build_object('name', a.name, 'uri', a.uri) ORDER BY a.name, a.uri), '[]')
                          FROM dag_schedule_asset_reference AS r JOIN asset AS a ON a.id = r.asset_id
                          WHERE r.dag_id = d.dag_id),
               'aliases', (SELECT coalesce(jsonb_agg(al.name ORDER BY al.name), '[]')
                           FROM dag_schedule_asset_alias_reference AS r
                           JOIN asset_alias AS al ON al.id = r.alias_id
                           WHERE r.dag_id = d.dag_id),
               'name_refs', (SELECT coalesce(jsonb_agg(r.name ORDER BY r.name), '[]')
                             FROM dag_schedule_asset_name_reference AS r WHERE r.dag_id = d.dag_id),
               'uri_refs', (SELECT coalesce(jsonb_agg(r.uri ORDER BY r.uri), '[]')
                            FROM dag_schedule_asset_uri_reference AS r WHERE r.dag_id = d.dag_id)),
           (SELECT coalesce(jsonb_agg(o || jsonb_build_object('task_id', t.task_id) ORDER BY t.task_id, ord), '[]')
            FROM tistate._dag_tasks(d.dag_id) AS t CROSS JOIN jsonb_array_elements(t.outlets) WITH ORDINALITY AS x (o, ord))
    FROM dag AS d
    ORDER BY d.dag_id;
$function$;

COMMENT ON FUNCTION tistate.dag_list() IS 'Every DAG with its task and run counts, its schedule {assets, aliases, name_refs, uri_refs} and its tasks'' outlets [{task_id, type, name, uri}]';

CREATE FUNCTION tistate.asset_list()
 RETURNS TABLE(id integer, name text, uri text, "group" text, active boolean, event_count integer, last_event_at timestamp with time zone, aliases text[], consumers text[], queued_for text[])
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path FROM CURRENT
AS $function$
    SELECT a.id, a.name::text, a.uri::text, a."group"::text,
           EXISTS (SELECT 1 FROM asset_active AS act WHERE act.name = a.name AND act.uri = a.uri),
           (SELECT count(*)::integer FROM asset_event AS e WHERE e.asset_id = a.id),
           (SELECT max(e."timestamp") FROM asset_event AS e WHERE e.asset_id = a.id),
           ARRAY(SELECT al.name::text FROM asset_alias_asset AS l
                 JOIN asset_alias AS al ON al.id = l.alias_id
                 WHERE l.asset_id = a.id ORDER BY al.name),
           -- DAGs scheduled on the asset, its name, its uri, or an alias linked to it
           ARRAY(SELECT r.dag_id::text FROM dag_schedule_asset_reference AS r WHERE r.asset_id = a.id
                 UNION
                 SELECT r.dag_id::text FROM dag_schedule_asset_name_reference AS r WHERE r.name = a.name
                 UNION
                 SELECT r.dag_id::text FROM dag_schedule_asset_uri_reference AS r WHERE r.uri = a.uri
                 UNION
                 SELECT r.dag_id::text FROM asset_alias_asset AS l
                 JOIN dag_schedule_asset_alias_reference AS r ON r.alias_id = l.alias_id
                 WHERE l.asset_id = a.id
                 ORDER BY 1),
           ARRAY(SELECT q.target_dag_id::text FROM asset_dag_run_queue AS q
                 WHERE q.asset_id = a.id ORDER BY 1)
    FROM asset AS a
    ORDER BY a.name, a.uri;
$function$;

COMMENT ON FUNCTION tistate.asset_list() IS 'Every asset with its activeness, event count and last event time, linked aliases, consumer DAGs and the DAGs queued for it';

CREATE FUNCTION tistate.asset_events(p_name text DEFAULT NULL::text, p_uri text DEFAULT NULL::text, p_ti_id uuid DEFAULT NULL::uuid, p_limit integer DEFAULT 50)
 RETURNS TABLE(id integer, asset_id integer, name text, uri text, extra jsonb, source_dag_id text, source_task_id text, source_run_id text, source_map_index integer, "timestamp" timestamp with time zone, partition_key text, ti_id uuid, try_number integer, aliases text[])
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path FROM CURRENT
AS $function$
DECLARE
    v_asset_ids integer[];
    v_event_ids integer[];
BEGIN
    PERFORM tistate._check_limit(p_limit, 'limit', 10000);
    IF p_name IS NOT NULL OR p_uri IS NOT NULL THEN
        v_asset_ids := ARRAY(SELECT a.id FROM asset AS a
                             WHERE (p_name IS NULL OR a.name = p_name) AND (p_uri IS NULL OR a.uri = p_uri));
        IF cardinality(v_asset_ids) = 0 THEN
            PERFORM tistate._raise('TS404', format('no asset with name %s and uri %s',
                                                   coalesce(p_name, '(any)'), coalesce(p_uri, '(any)')),
                                   jsonb_build_object('reason', 'not_found', 'name', p_name, 'uri', p_uri),
                                   'tistate asset list shows the known assets');
        END IF;
    END IF;
    -- Newest first, through idx_asset_id_timestamp / idx_asset_event_ti_id when filtered.
    v_event_ids := ARRAY(
        SELECT e.id FROM asset_event AS e
        WHERE (v_asset_ids IS NULL OR e.asset_id = ANY (v_asset_ids))
          AND (p_ti_id IS NULL OR e.id IN (SELECT p.event_id FROM tistate.asset_event_producer AS p
                                           WHERE p.ti_id = p_ti_id))
        ORDER BY e."timestamp" DESC, e.id DESC
        LIMIT p_limit);
    RETURN QUERY SELECT r.* FROM tistate._asset_event_rows(v_event_ids) AS r;
END
$function$;

COMMENT ON FUNCTION tistate.asset_events(p_name text, p_uri text, p_ti_id uuid, p_limit integer) IS 'Asset events, newest first, optionally of one asset (by name and/or uri; TS404 if none matches) or one producing task instance id; at most p_limit (0..10000, else TS422)';
