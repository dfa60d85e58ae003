-- defined by migration 0006_worker_and_operator_functions.sql
-- EXECUTE granted to: tistate_executor
CREATE OR REPLACE FUNCTION tistate.ti_heartbeat(p_ti_id uuid, p_hostname text, p_pid integer, p_now timestamp with time zone DEFAULT clock_timestamp(), p_lock_timeout interval DEFAULT NULL::interval)
 RETURNS void
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
 SET lock_timeout TO '2s'
AS $function$
DECLARE
    v_state    text;
    v_hostname text;
    v_pid      integer;
    v_message  text;
BEGIN
    p_now := tistate._caller_now(p_now);  -- a worker uses the database clock (docs/dba.md)
    IF p_hostname IS NULL THEN
        PERFORM tistate._invalid('hostname', 'field required');
    END IF;
    IF p_pid IS NULL THEN
        PERFORM tistate._invalid('pid', 'field required');
    END IF;
    PERFORM tistate._set_lock_timeout(p_lock_timeout);

    -- Fast path: one conditional UPDATE. Its row lock wait is bounded by lock_timeout (55P03).
    UPDATE task_instance AS ti SET last_heartbeat_at = p_now, updated_at = p_now
    WHERE ti.id = p_ti_id AND ti.state = 'running' AND ti.hostname = p_hostname AND ti.pid = p_pid;
    IF FOUND THEN
        RETURN;
    END IF;

    -- Slow path: explain why.
    SELECT ti.state, ti.hostname, ti.pid INTO v_state, v_hostname, v_pid
    FROM task_instance AS ti WHERE ti.id = p_ti_id
    FOR UPDATE;
    IF NOT FOUND THEN
        PERFORM tistate._raise_missing_ti(p_ti_id);
    END IF;
    IF v_hostname IS DISTINCT FROM p_hostname OR v_pid IS DISTINCT FROM p_pid THEN
        v_message := 'TI is already running elsewhere';
        PERFORM tistate._raise('TS409', v_message,
            jsonb_build_object('reason', 'running_elsewhere', 'message', v_message, 'current_hostname', v_hostname,
                               'current_pid', v_pid, 'previous_state', v_state));
    END IF;
    IF v_state IS DISTINCT FROM 'running' THEN
        v_message := 'TI is no longer in the running state and task should terminate';
        PERFORM tistate._raise('TS409', v_message,
            jsonb_build_object('reason', 'not_running', 'message', v_message, 'current_state', v_state,
                               'previous_state', v_state));
    END IF;
    -- Reached only if the row changed between the two statements and now matches.
    UPDATE task_instance AS ti SET last_heartbeat_at = p_now, updated_at = p_now WHERE ti.id = p_ti_id;
END
$function$;

COMMENT ON FUNCTION tistate.ti_heartbeat(p_ti_id uuid, p_hostname text, p_pid integer, p_now timestamp with time zone, p_lock_timeout interval) IS 'Heartbeat of a running try: one conditional UPDATE; else TS404 / TS410 / TS409 (running_elsewhere with current_hostname and current_pid, or not_running with current_state); lock wait bounded (55P03)';
