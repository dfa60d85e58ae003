-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: tistate_executor
CREATE OR REPLACE FUNCTION tistate.ti_run(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone DEFAULT clock_timestamp(), p_lock_timeout interval DEFAULT NULL::interval)
 RETURNS jsonb
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
 SET lock_timeout TO '2s'
AS $function$
DECLARE
    v_hostname   text;
    v_unixname   text;
    v_pid        integer;
    v_start_date timestamptz;
    v_ctx        tistate._ti_context;
    v_duplicate  boolean;
    v_resuming   boolean;
BEGIN
    p_now := tistate._caller_now(p_now);  -- a worker uses the database clock (docs/dba.md)
    -- TIEnterRunningPayload, validated before the lock.
    PERFORM tistate._check_object(p_payload, '', ARRAY['state', 'hostname', 'unixname', 'pid', 'start_date'],
                                  ARRAY['state', 'hostname', 'unixname', 'pid', 'start_date']);
    IF p_payload ->> 'state' IS DISTINCT FROM 'running' THEN
        PERFORM tistate._invalid('state', 'must be "running"');
    END IF;
    v_hostname := tistate._text(p_payload -> 'hostname', 'hostname', 1000, false);
    v_unixname := tistate._text(p_payload -> 'unixname', 'unixname', 1000, false);
    v_pid := tistate._integer(p_payload -> 'pid', 'pid');
    v_start_date := tistate._timestamp(p_payload -> 'start_date', 'start_date');

    v_ctx := tistate._lock_ti(p_ti_id, p_lock_timeout);
    -- coalesce: a NULL state (none) or NULL hostname/pid must not make the state check below NULL.
    v_duplicate := coalesce((v_ctx.ti).state = 'running' AND (v_ctx.ti).hostname = v_hostname
                            AND (v_ctx.ti).unixname = v_unixname AND (v_ctx.ti).pid = v_pid, false);
    IF NOT v_duplicate AND coalesce((v_ctx.ti).state, 'none') NOT IN ('queued', 'restarting') THEN
        PERFORM tistate._invalid_state(v_ctx, 'TI was not in a state where it could be marked as running');
    END IF;
    -- Resuming after a deferral keeps the try's original start_date.
    v_resuming := (v_ctx.ti).next_kwargs IS NOT NULL AND jsonb_typeof((v_ctx.ti).next_kwargs) = 'object'
                  AND (v_ctx.ti).next_kwargs <> '{}'::jsonb;

    UPDATE task_instance AS ti SET
        state = 'running',
        hostname = v_hostname,
        unixname = v_unixname,
        pid = v_pid,
        start_date = CASE WHEN v_resuming OR v_duplicate THEN ti.start_date ELSE v_start_date END,
        end_date = NULL,
        duration = NULL,
        last_heartbeat_at = p_now,
        retry_delay_override = NULL,
        retry_reason = NULL,
        updated_at = p_now
    WHERE ti.id = p_ti_id;

    IF NOT v_duplicate THEN
        PERFORM tistate._audit(v_ctx, 'running', p_now, jsonb_build_object('host_name', v_hostname)::text);
    END IF;
    RETURN tistate._run_context(p_ti_id, (v_ctx.ti).state);
END
$function$;

COMMENT ON FUNCTION tistate.ti_run(p_ti_id uuid, p_payload jsonb, p_now timestamp with time zone, p_lock_timeout interval) IS 'queued/restarting -> running (Airflow''s TIEnterRunningPayload); idempotent for the same hostname, unixname and pid; returns the TIRunContext; TS404/TS410/TS409/TS422';
