-- defined by migration 0006_worker_and_operator_functions.sql
-- EXECUTE granted to: tistate_operator
CREATE OR REPLACE FUNCTION tistate.emit_asset_event(p_name text, p_uri text, p_extra jsonb, p_partition_key text DEFAULT NULL::text, p_now timestamp with time zone DEFAULT clock_timestamp())
 RETURNS tistate.asset_event_result
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
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
