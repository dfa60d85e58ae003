-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._consumers_of(p_asset_id integer, p_name text, p_uri text, p_alias_ids integer[])
 RETURNS SETOF text
 LANGUAGE sql
 STABLE
AS $function$
    SELECT d.dag_id::text
    FROM tistate.dag AS d
    WHERE NOT d.is_paused AND NOT d.is_stale AND NOT d.timetable_partitioned
      AND (EXISTS (SELECT FROM tistate.dag_schedule_asset_reference AS r
                   WHERE r.dag_id = d.dag_id AND r.asset_id = p_asset_id)
           OR EXISTS (SELECT FROM tistate.dag_schedule_asset_alias_reference AS r
                      WHERE r.dag_id = d.dag_id AND r.alias_id = ANY (p_alias_ids))
           OR EXISTS (SELECT FROM tistate.dag_schedule_asset_name_reference AS r
                      WHERE r.dag_id = d.dag_id AND r.name = p_name)
           OR EXISTS (SELECT FROM tistate.dag_schedule_asset_uri_reference AS r
                      WHERE r.dag_id = d.dag_id AND r.uri = p_uri))
$function$;

COMMENT ON FUNCTION tistate._consumers_of(p_asset_id integer, p_name text, p_uri text, p_alias_ids integer[]) IS 'The DAGs an event of this asset (emitted through these aliases) queues: scheduled on the asset, an alias, its name or uri; not paused, stale or partition-aware';
