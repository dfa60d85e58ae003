-- defined by migration 0007_read_functions.sql
-- EXECUTE granted to: tistate_operator
CREATE OR REPLACE FUNCTION tistate.dag_list()
 RETURNS TABLE(dag_id text, owners text, is_paused boolean, is_stale boolean, fail_fast boolean, task_count integer, run_count integer, schedule jsonb, outlets jsonb)
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
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
