-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._lock_consumers(p_outlets jsonb, p_events jsonb, p_now timestamp with time zone)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_dags        text[];
    v_partitioned text;
BEGIN
    -- Every DAG an event of these outlets could queue (a superset: by asset name or uri, and by the
    -- declared aliases), share-locked in dag_id order so concurrent completions cannot deadlock on
    -- them; then the time the events and queue rows are stamped with.
    SELECT array_agg(x.dag_id) INTO v_dags
    FROM (
        SELECT d.dag_id FROM dag AS d
        WHERE d.dag_id IN (
            WITH keys AS (
                SELECT o.name, o.uri FROM jsonb_to_recordset(p_outlets) AS o (type text, name text, uri text)
                WHERE o.type <> 'AssetAlias'
                UNION
                SELECT e.dest_asset_key ->> 'name', e.dest_asset_key ->> 'uri'
                FROM jsonb_to_recordset(p_events) AS e (dest_asset_key jsonb)
            )
            -- equi-joins (hashable), not one join on an OR
            SELECT r.dag_id FROM dag_schedule_asset_reference AS r
            WHERE r.asset_id IN (SELECT a.id FROM asset AS a JOIN keys AS k ON a.name = k.name
                                 UNION
                                 SELECT a.id FROM asset AS a JOIN keys AS k ON a.uri = k.uri)
            UNION
            SELECT r.dag_id FROM dag_schedule_asset_alias_reference AS r
            JOIN asset_alias AS al ON al.id = r.alias_id
            WHERE al.name IN (SELECT o.name FROM jsonb_to_recordset(p_outlets) AS o (type text, name text)
                              WHERE o.type = 'AssetAlias')
            UNION
            SELECT r.dag_id FROM dag_schedule_asset_name_reference AS r WHERE r.name IN (SELECT k.name FROM keys AS k)
            UNION
            SELECT r.dag_id FROM dag_schedule_asset_uri_reference AS r WHERE r.uri IN (SELECT k.uri FROM keys AS k))
        ORDER BY d.dag_id
        FOR SHARE OF d) AS x;
    -- Partition-aware consumers get asset_partition_dag_run rows from Airflow's API server, which
    -- tistate does not write: refused, never silently left unqueued.
    SELECT d.dag_id INTO v_partitioned
    FROM dag AS d
    WHERE d.dag_id = ANY (v_dags) AND d.timetable_partitioned AND NOT d.is_paused AND NOT d.is_stale
    LIMIT 1;
    IF FOUND THEN
        PERFORM tistate._raise('TS501',
            format('dag %s is partition-aware, which tistate''s Airflow mode does not support', v_partitioned),
            jsonb_build_object('reason', 'partition_aware_consumer', 'dag_id', v_partitioned),
            'Airflow''s API server queues partition-aware consumers (asset_partition_dag_run); route this task''s state calls to it');
    END IF;
    RETURN greatest(p_now, clock_timestamp());
END
$function$;

COMMENT ON FUNCTION tistate._lock_consumers(p_outlets jsonb, p_events jsonb, p_now timestamp with time zone) IS 'Airflow mode: share-lock the DAGs these outlets could queue (so the scheduler does not create their runs until this transaction commits) and return the stamp for the events, taken after the locks';
