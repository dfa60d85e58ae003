-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._queue_consumers(p_events tistate._planned_event[], p_now timestamp with time zone)
 RETURNS text[]
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    v_dag_ids text[];
BEGIN
    -- Events with a partition key never go to asset_dag_run_queue (Airflow reference 4.6). Rows are
    -- inserted sorted by (asset_id, target_dag_id), so concurrent callers take the queue's key locks
    -- in the same order and cannot deadlock.
    WITH eligible AS (
        SELECT DISTINCT e.asset_id, c.dag_id
        FROM unnest(p_events) AS e
        JOIN asset AS a ON a.id = e.asset_id
        CROSS JOIN LATERAL tistate._consumers_of(e.asset_id, a.name, a.uri, e.alias_ids) AS c (dag_id)
        WHERE e.partition_key IS NULL
    ),
    queued AS (
        INSERT INTO asset_dag_run_queue AS q (asset_id, target_dag_id, created_at)
        SELECT g.asset_id, g.dag_id, p_now FROM eligible AS g
        ORDER BY g.asset_id, g.dag_id
        ON CONFLICT (asset_id, target_dag_id) DO UPDATE SET created_at = greatest(q.created_at, excluded.created_at)
    )
    SELECT coalesce(array_agg(DISTINCT g.dag_id ORDER BY g.dag_id), '{}') INTO v_dag_ids FROM eligible AS g;
    RETURN v_dag_ids;
END
$function$;

COMMENT ON FUNCTION tistate._queue_consumers(p_events tistate._planned_event[], p_now timestamp with time zone) IS 'Queue the consumer DAGs (tistate._consumers_of) of planned events in asset_dag_run_queue (sorted, ON CONFLICT DO NOTHING); returns the consumer dag ids';
