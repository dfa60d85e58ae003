-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: tistate_executor
CREATE OR REPLACE FUNCTION tistate.ti_update_state(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone DEFAULT clock_timestamp(), p_lock_timeout interval DEFAULT NULL::interval)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
 SET lock_timeout TO '2s'
AS $function$
DECLARE
    v_payload   jsonb;
    v_ctx       tistate._ti_context;
    v_started   timestamptz;
    v_locked    timestamptz;
    v_result    tistate.state_update_result;
BEGIN
    p_now := tistate._caller_now(p_now);  -- a worker uses the database clock (docs/dba.md)
    -- 1. Validate and normalise the whole payload before touching any row (TS422).
    v_payload := tistate._normalize_state_payload(p_payload);
    -- The usual success: registration before the row lock, the lock held only for the update.
    IF v_payload ->> 'state' = 'success' THEN
        v_result := tistate._success_before_lock(p_ti_id, v_payload, p_now, p_lock_timeout);
        IF v_result.ti_id IS NOT NULL THEN
            RETURN v_result;
        END IF;
    END IF;
    -- 2. One bounded row lock (TS404 / TS410 when absent, 55P03 after lock_timeout).
    v_started := clock_timestamp();
    v_ctx := tistate._lock_ti(p_ti_id, p_lock_timeout);
    v_locked := clock_timestamp();
    -- 3. Same state: a no-op, so a retried call never duplicates anything.
    IF (v_ctx.ti).state IS NOT DISTINCT FROM v_payload ->> 'state' THEN
        v_result.ti_id := p_ti_id;
        v_result.previous_state := (v_ctx.ti).state;
        v_result.new_state := (v_ctx.ti).state;
        v_result.applied := false;
        v_result.asset_event_ids := ARRAY(SELECT e.event_id FROM tistate.asset_event_producer AS e
                                          WHERE e.ti_id = p_ti_id AND e.try_number = (v_ctx.ti).try_number
                                          ORDER BY e.event_id);
        v_result.queued_dag_ids := '{}';
    ELSIF (v_ctx.ti).state IS DISTINCT FROM 'running' THEN
        PERFORM tistate._invalid_state(v_ctx, 'TI was not in the running state so it cannot be updated');
    ELSE
        -- 4. The transition's writes.
        v_result := tistate._apply_state(v_ctx, v_payload, p_now);
    END IF;
    v_result.lock_wait_ms := extract(epoch FROM v_locked - v_started) * 1000;
    v_result.lock_held_ms := extract(epoch FROM clock_timestamp() - v_locked) * 1000;
    RETURN v_result;
END
$function$;

COMMENT ON FUNCTION tistate.ti_update_state(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_lock_timeout interval) IS 'The Execution API state PATCH: p_payload is Airflow''s TIStateUpdate JSON. Validates (TS422), locks the row (bounded), answers the same-state no-op (applied=false), TS404/TS410/TS409, and applies the transition atomically';
