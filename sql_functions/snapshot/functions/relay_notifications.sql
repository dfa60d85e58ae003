-- defined by migration 0008_notifications.sql
-- EXECUTE granted to: tistate_executor
CREATE OR REPLACE FUNCTION tistate.relay_notifications(p_limit integer DEFAULT 1000)
 RETURNS integer
 LANGUAGE plpgsql
 SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
AS $function$
DECLARE
    v_ids  integer[];
    v_sent integer;
BEGIN
    PERFORM tistate._check_limit(p_limit, 'limit', 100000);
    -- Up to p_limit committed outbox rows, oldest first; SKIP LOCKED lets several relays run
    -- at once without waiting on, or repeating, each other's rows. The notifications are
    -- delivered when the caller's transaction commits, together with the deletion, so a relay
    -- that fails before commit leaves its rows for the next one.
    WITH taken AS (
        DELETE FROM tistate.asset_event_outbox AS o
        WHERE o.ctid = ANY (ARRAY(
            SELECT x.ctid FROM tistate.asset_event_outbox AS x
            ORDER BY x.created_at
            LIMIT p_limit
            FOR UPDATE SKIP LOCKED))
        RETURNING o.event_ids
    )
    SELECT array_agg(DISTINCT i.id) INTO v_ids FROM taken AS t CROSS JOIN unnest(t.event_ids) AS i (id);
    IF v_ids IS NULL THEN
        RETURN 0;
    END IF;
    -- The same message as notify_events = on sends (tistate._notification); an event deleted
    -- since is not announced.
    PERFORM pg_notify('tistate_events', tistate._notification(e.id, e.asset_id, p.ti_id, e.partition_key))
    FROM asset_event AS e
    LEFT JOIN tistate.asset_event_producer AS p ON p.event_id = e.id
    WHERE e.id = ANY (v_ids)
    ORDER BY e.id;
    GET DIAGNOSTICS v_sent = ROW_COUNT;
    RETURN v_sent;
END
$function$;

COMMENT ON FUNCTION tistate.relay_notifications(p_limit integer) IS 'Send the pg_notify(''tistate_events'', ...) of up to p_limit committed outbox rows (oldest first) and delete them; returns the number of notifications. Call it in its own transaction, repeatedly (tistate serve and tistate relay do)';
