-- defined by migration 0007_read_functions.sql
-- EXECUTE granted to: tistate_operator
CREATE OR REPLACE FUNCTION tistate.asset_list()
 RETURNS TABLE(id integer, name text, uri text, "group" text, active boolean, event_count integer, last_event_at timestamp with time zone, aliases text[], consumers text[], queued_for text[])
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
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
