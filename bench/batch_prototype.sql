-- Batching prototype (issue 15): NOT part of tistate, never a migration. Loaded into a scratch
-- bench database only, it overrides tistate._queue_rows there. B successes run in one transaction,
-- each in its own subtransaction (a refusal undoes only its own writes), in id order, and the queue
-- rows of all of them are upserted once at the end. Measured in docs/benchmarks.md (session 5).
--
--   BENCH_DB_PREFIX=proto python -m bench seed           # database proto_h0
--   psql -d proto_h0 -f bench/batch_prototype.sql
--   pgbench -n -M prepared -c 10 -j 2 -t <per / B> -D k=0 -D per=<per> -D batch=<id> proto_h0 -f s.sql, with s.sql:
--     \set k :k + 1
--     \set lo :client_id * :per + (:k - 1) * B + 1
--     \set hi :lo + B - 1
--     SELECT count(*) FROM bench.batch_update_state(
--         (SELECT array_agg(ti_id ORDER BY rn) FROM bench.ti_map WHERE batch_id = :batch AND rn BETWEEN :lo AND :hi),
--         (SELECT array_agg(payload ORDER BY rn) FROM bench.ti_map WHERE batch_id = :batch AND rn BETWEEN :lo AND :hi));
CREATE OR REPLACE FUNCTION tistate._queue_rows(p_asset_ids integer[], p_dag_ids text[], p_stamp timestamp with time zone)
 RETURNS void LANGUAGE plpgsql SET plan_cache_mode TO 'force_generic_plan' AS $function$
BEGIN
    IF current_setting('tistate.defer_queue', true) = 'on' THEN
        INSERT INTO pg_temp.deferred_queue SELECT a, d, p_stamp FROM unnest(p_asset_ids, p_dag_ids) AS r (a, d);
        RETURN;
    END IF;
    IF cardinality(p_asset_ids) > 0 THEN
        INSERT INTO asset_dag_run_queue AS q (asset_id, target_dag_id, created_at)
        SELECT r.asset_id, r.dag_id, p_stamp FROM unnest(p_asset_ids, p_dag_ids) AS r (asset_id, dag_id)
        ORDER BY r.asset_id, r.dag_id
        ON CONFLICT (asset_id, target_dag_id) DO UPDATE SET created_at = greatest(q.created_at, excluded.created_at);
    END IF;
END $function$;

CREATE OR REPLACE FUNCTION bench.batch_update_state(p_ids uuid[], p_payloads jsonb[])
 RETURNS SETOF tistate.state_update_result LANGUAGE plpgsql AS $function$
DECLARE
    v_i int; v_r tistate.state_update_result;
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS deferred_queue (asset_id int, dag_id text, stamp timestamptz) ON COMMIT DELETE ROWS;
    GRANT ALL ON pg_temp.deferred_queue TO tistate_owner;
    PERFORM set_config('tistate.defer_queue', 'on', true);
    FOR v_i IN SELECT i FROM generate_subscripts(p_ids, 1) AS i ORDER BY p_ids[i] LOOP
        BEGIN
            v_r := tistate.ti_update_state(p_ids[v_i], p_payloads[v_i]);
            RETURN NEXT v_r;
        EXCEPTION WHEN OTHERS THEN
            v_r.ti_id := p_ids[v_i]; v_r.applied := false; RETURN NEXT v_r;
        END;
    END LOOP;
    PERFORM set_config('tistate.defer_queue', 'off', true);
    INSERT INTO tistate.asset_dag_run_queue AS q (asset_id, target_dag_id, created_at)
    SELECT asset_id, dag_id, max(stamp) FROM pg_temp.deferred_queue GROUP BY 1, 2 ORDER BY 1, 2
    ON CONFLICT (asset_id, target_dag_id) DO UPDATE SET created_at = greatest(q.created_at, excluded.created_at);
END $function$;
