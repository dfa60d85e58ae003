-- defined by migration 0007_read_functions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._asset_event_rows(p_event_ids integer[])
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
