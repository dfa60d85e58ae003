-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._consumers_of(p_asset_id integer, p_name text, p_uri text, p_alias_ids integer[])
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
