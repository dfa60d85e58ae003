-- defined by migration 0011_success_path.sql
-- EXECUTE granted to: owner only
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

COMMENT ON FUNCTION tistate._queue_consumers(p_events tistate._planned_event[], p_now timestamp with time zone) IS 'Queue the consumer DAGs (tistate._consumers_of) of planned events without a partition key (tistate._queue_rows: sorted, a pending row takes the newer time); returns the consumer dag ids';
