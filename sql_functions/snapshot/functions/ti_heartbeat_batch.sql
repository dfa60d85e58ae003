-- defined by migration 0013_heartbeat_batch.sql
-- EXECUTE granted to: tistate_executor
CREATE OR REPLACE FUNCTION tistate.ti_heartbeat_batch(p_ti_ids uuid[], p_hostnames text[], p_pids integer[], p_now timestamp with time zone DEFAULT clock_timestamp())
 RETURNS integer[]
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
AS $function$
DECLARE
    v_recorded integer[];
BEGIN
    p_now := tistate._caller_now(p_now);  -- a worker uses the database clock (docs/dba.md)
    IF cardinality(p_ti_ids) > 1000 THEN
        PERFORM tistate._invalid('p_ti_ids', 'at most 1000 heartbeats in one batch');
    END IF;
    -- SKIP LOCKED: the batch never waits, so a row held by a finishing task (or by the scheduler)
    -- delays only its own heartbeat, which ti_heartbeat then handles alone. Rows are locked in id
    -- order, as the single calls lock them. An id given twice is updated once, both positions
    -- recorded (as two single calls would both be).
    WITH item AS (
        SELECT i.ti_id, i.hostname, i.pid, i.pos::integer AS pos
        FROM unnest(p_ti_ids, p_hostnames, p_pids) WITH ORDINALITY AS i (ti_id, hostname, pid, pos)
    ),
    free AS (
        SELECT ti.id, item.pos
        FROM task_instance AS ti
        JOIN item ON item.ti_id = ti.id AND item.hostname = ti.hostname AND item.pid = ti.pid
        WHERE ti.state = 'running'
        ORDER BY ti.id
        FOR NO KEY UPDATE OF ti SKIP LOCKED
    ),
    recorded AS (
        UPDATE task_instance AS ti SET last_heartbeat_at = p_now, updated_at = p_now
        WHERE ti.id IN (SELECT free.id FROM free)
    )
    SELECT coalesce(array_agg(free.pos ORDER BY free.pos), '{}') INTO v_recorded FROM free;
    RETURN v_recorded;
END
$function$;

COMMENT ON FUNCTION tistate.ti_heartbeat_batch(p_ti_ids uuid[], p_hostnames text[], p_pids integer[], p_now timestamp with time zone) IS 'Heartbeats of many running tries in one statement (arrays of equal length, at most 1000): records those whose TI is running on that host and pid and whose row is not locked (SKIP LOCKED, never waits), and returns their 1-based positions; the rest are for ti_heartbeat, which waits and explains';
