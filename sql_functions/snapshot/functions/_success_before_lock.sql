-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._success_before_lock(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_lock_timeout interval)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_seen    tistate._ti_context := tistate._peek_ti(p_ti_id);
    v_ctx     tistate._ti_context;
    v_events  tistate._planned_event[];
    v_dag_ids text[];
    v_started timestamptz;
    v_locked  timestamptz;
    v_result  tistate.state_update_result;
BEGIN
    -- The row lock is what heartbeats and a worker's retries wait on, so it is taken last: the events,
    -- links and queue rows are written first, in this same transaction, and the row is locked only
    -- for its own update. If the try is no longer running once locked (a concurrent call won), the
    -- subtransaction undoes the registration and the caller answers from the locked row.
    IF (v_seen.ti).state IS DISTINCT FROM 'running' THEN
        RETURN v_result;
    END IF;
    PERFORM tistate._set_lock_timeout(p_lock_timeout);
    BEGIN
        v_events := tistate._register_outlet_events(v_seen, p_payload -> 'task_outlets', p_payload -> 'outlet_events', p_now);
        v_dag_ids := tistate._queue_consumers(v_events, p_now);
        v_started := clock_timestamp();
        v_ctx := tistate._lock_ti(p_ti_id, p_lock_timeout);
        v_locked := clock_timestamp();
        IF (v_ctx.ti).state IS DISTINCT FROM 'running' OR (v_ctx.ti).try_number IS DISTINCT FROM (v_seen.ti).try_number THEN
            RAISE EXCEPTION USING ERRCODE = 'TSR01', MESSAGE = 'task instance changed before it was locked';
        END IF;
        v_result := tistate._finish_success(v_ctx, p_payload, v_events, v_dag_ids, p_now);
        v_result.lock_wait_ms := extract(epoch FROM v_locked - v_started) * 1000;
        v_result.lock_held_ms := extract(epoch FROM clock_timestamp() - v_locked) * 1000;
        RETURN v_result;
    EXCEPTION WHEN SQLSTATE 'TSR01' THEN
        RETURN NULL;  -- private code, never leaves this function
    END;
END
$function$;

COMMENT ON FUNCTION tistate._success_before_lock(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_lock_timeout interval) IS 'running -> success with the row lock held only for the row update: registration first, then lock and re-check (NULL result: not running, answer from the locked path)';
