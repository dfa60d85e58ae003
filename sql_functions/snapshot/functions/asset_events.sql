-- defined by migration 0007_read_functions.sql
-- EXECUTE granted to: tistate_operator
CREATE OR REPLACE FUNCTION tistate.asset_events(p_name text DEFAULT NULL::text, p_uri text DEFAULT NULL::text, p_ti_id uuid DEFAULT NULL::uuid, p_limit integer DEFAULT 50)
 RETURNS TABLE(id integer, asset_id integer, name text, uri text, extra jsonb, source_dag_id text, source_task_id text, source_run_id text, source_map_index integer, "timestamp" timestamp with time zone, partition_key text, ti_id uuid, try_number integer, aliases text[])
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
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
