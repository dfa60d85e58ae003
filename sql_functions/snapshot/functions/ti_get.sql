-- defined by migration 0007_read_functions.sql
-- EXECUTE granted to: tistate_operator
CREATE OR REPLACE FUNCTION tistate.ti_get(p_ti_id uuid, p_log_limit integer DEFAULT 20)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
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
