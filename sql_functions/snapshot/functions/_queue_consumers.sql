-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._queue_consumers(p_events tistate._planned_event[], p_now timestamp with time zone)
 RETURNS text[]
 LANGUAGE plpgsql
 SET plan_cache_mode TO 'force_generic_plan'
AS $function$
DECLARE
    v_dag_ids text[];
BEGIN
    -- Consumers: DAGs scheduled on the asset, on an alias that emitted the event, or on the
    -- asset's name or uri. Paused and stale DAGs are not queued; partition-aware DAGs and events
    -- with a partition key never go to asset_dag_run_queue (Airflow reference 4.6).
    -- Rows are inserted sorted by (asset_id, target_dag_id), so concurrent completions take the
    -- queue's key locks in the same order and cannot deadlock.
    WITH events AS (
        SELECT e.asset_id, e.alias_ids FROM unnest(p_events) AS e WHERE e.partition_key IS NULL
    ),
    consumers AS (
        SELECT e.asset_id, r.dag_id FROM events AS e
        JOIN tistate.dag_schedule_asset_reference AS r ON r.asset_id = e.asset_id
        UNION
        SELECT e.asset_id, r.dag_id FROM events AS e CROSS JOIN unnest(e.alias_ids) AS al (id)
        JOIN tistate.dag_schedule_asset_alias_reference AS r ON r.alias_id = al.id
        UNION
        SELECT e.asset_id, r.dag_id FROM events AS e
        JOIN tistate.asset AS a ON a.id = e.asset_id
        JOIN tistate.dag_schedule_asset_name_reference AS r ON r.name = a.name
        UNION
        SELECT e.asset_id, r.dag_id FROM events AS e
        JOIN tistate.asset AS a ON a.id = e.asset_id
        JOIN tistate.dag_schedule_asset_uri_reference AS r ON r.uri = a.uri
    ),
    eligible AS (
        SELECT c.asset_id, c.dag_id FROM consumers AS c
        JOIN tistate.dag AS d ON d.dag_id = c.dag_id
        WHERE NOT d.is_paused AND NOT d.is_stale AND NOT d.timetable_partitioned
    ),
    queued AS (
        INSERT INTO tistate.asset_dag_run_queue (asset_id, target_dag_id, created_at)
        SELECT g.asset_id, g.dag_id, p_now FROM eligible AS g
        ORDER BY g.asset_id, g.dag_id
        ON CONFLICT DO NOTHING
    )
    SELECT coalesce(array_agg(DISTINCT g.dag_id::text ORDER BY g.dag_id::text), '{}') INTO v_dag_ids
    FROM eligible AS g;
    RETURN v_dag_ids;
END
$function$;

COMMENT ON FUNCTION tistate._queue_consumers(p_events tistate._planned_event[], p_now timestamp with time zone) IS 'Queue the consumer DAGs of planned events in asset_dag_run_queue (sorted, ON CONFLICT DO NOTHING); returns the consumer dag ids';
