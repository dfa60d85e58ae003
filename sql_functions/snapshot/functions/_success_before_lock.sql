-- defined by migration 0011_success_path.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._success_before_lock(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_lock_timeout interval)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_seen       tistate._ti_context := tistate._peek_ti(p_ti_id);
    v_registered record;
    v_started    timestamptz;
    v_locked     timestamptz;
    v_result     tistate.state_update_result;
BEGIN
    -- The row lock is what heartbeats and a worker's retries wait on, so it is taken late: the events
    -- and links are written first, in this same transaction; the row is locked by its update, then
    -- only the audit row and the queue rows (last: the contended ones) follow. If the try is no
    -- longer running once locked (a concurrent call won), the subtransaction undoes the
    -- registration and the caller answers from the locked row.
    IF (v_seen.ti).state IS DISTINCT FROM 'running' THEN
        RETURN v_result;
    END IF;
    PERFORM tistate._set_lock_timeout(p_lock_timeout);  -- the registration may wait too
    BEGIN
        v_registered := tistate._register_outlet_events(
            p_ti_id, (v_seen.ti).dag_id, (v_seen.ti).task_id, (v_seen.ti).run_id, (v_seen.ti).map_index,
            (v_seen.ti).try_number, v_seen.run_partition_key, p_payload -> 'task_outlets', p_payload -> 'outlet_events', p_now);
        -- Lock and update the row in one statement (bounded by lock_timeout), if the same try is
        -- still running (re-checked on the row as it is once locked): then what the unlocked look
        -- read of it, its run and DAG still holds. The row lock is held from here to commit.
        v_started := clock_timestamp();
        IF NOT tistate._end_try((v_seen.ti).id, (v_seen.ti).try_number, p_payload, p_now) THEN
            RAISE EXCEPTION USING ERRCODE = 'TSR01', MESSAGE = 'task instance changed before it was locked';
        END IF;
        v_locked := clock_timestamp();
        v_result := tistate._finish_success(v_seen, p_now, v_registered);
        v_result.lock_wait_ms := extract(epoch FROM v_locked - v_started) * 1000;
        v_result.lock_held_ms := extract(epoch FROM clock_timestamp() - v_locked) * 1000;
        RETURN v_result;
    EXCEPTION WHEN SQLSTATE 'TSR01' THEN
        RETURN NULL;  -- private code, never leaves this function
    END;
END
$function$;

COMMENT ON FUNCTION tistate._success_before_lock(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_lock_timeout interval) IS 'running -> success: the registration first, then the row update (which locks the row and re-checks the try), the audit row and the queue rows last (NULL result: not that running try, answer from the locked path)';
