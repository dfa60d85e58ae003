-- 0009: event notifications through an outbox, relayed after commit.
--
-- pg_notify in a transaction takes PostgreSQL's global notify lock at commit and keeps it through
-- the commit's WAL flush, so every notifying transaction in the cluster commits one after another.
-- With `tistate.notify_events = relay` a transition writes one outbox row instead (no lock), and
-- tistate.relay_notifications(), called after commit by a relay (`tistate serve` runs one; so does
-- `tistate relay`), sends the same notifications for many transitions in one transaction. Listeners
-- still hear only committed events: an outbox row is visible to the relay only once its
-- transaction has committed.
--
-- tistate.notify_events: on (default; unset is on) = pg_notify inside the transaction, as before;
-- relay = outbox row, delivered by the relay; off = no notification at all.

CREATE TABLE tistate.asset_event_outbox (
    event_ids  integer[]   NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
-- One row per notifying transaction, no index: inserts stay as cheap as they get, and the relay
-- takes the whole table (or a bounded part of it) at once.
COMMENT ON TABLE tistate.asset_event_outbox IS
    'Asset events to announce on tistate_events once committed (tistate.notify_events = relay); drained by tistate.relay_notifications()';

CREATE OR REPLACE FUNCTION tistate._notify_events(p_events tistate._planned_event[], p_ti_id uuid)
RETURNS void
LANGUAGE plpgsql
AS $$
DECLARE
    v_mode text := coalesce(current_setting('tistate.notify_events', true), '');
BEGIN
    IF v_mode = 'off' OR coalesce(cardinality(p_events), 0) = 0 THEN
        RETURN;
    END IF;
    IF v_mode = 'relay' THEN
        INSERT INTO tistate.asset_event_outbox (event_ids)
        SELECT array_agg(e.event_id ORDER BY e.event_id) FROM unnest(p_events) AS e;
        RETURN;
    END IF;
    -- Delivered at commit only, so listeners never hear of an event that rolled back.
    PERFORM pg_notify('tistate_events', json_build_object(
                'event_id', e.event_id, 'asset_id', e.asset_id, 'name', a.name, 'uri', a.uri,
                'ti_id', p_ti_id, 'partition_key', e.partition_key)::text)
    FROM unnest(p_events) AS e
    JOIN tistate.asset AS a ON a.id = e.asset_id
    ORDER BY e.event_id;
END
$$;
COMMENT ON FUNCTION tistate._notify_events(tistate._planned_event[], uuid) IS
    'Announce events on tistate_events: pg_notify now (notify_events on), an outbox row for the relay (relay), or nothing (off)';

CREATE FUNCTION tistate.relay_notifications(p_limit integer DEFAULT 1000)
RETURNS integer
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, tistate, pg_temp
AS $$
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
    -- The same message as notify_events = on sends; an event deleted since is not announced.
    PERFORM pg_notify('tistate_events', json_build_object(
                'event_id', e.id, 'asset_id', e.asset_id, 'name', a.name, 'uri', a.uri,
                'ti_id', e.ti_id, 'partition_key', e.partition_key)::text)
    FROM tistate.asset_event AS e
    JOIN tistate.asset AS a ON a.id = e.asset_id
    WHERE e.id = ANY (v_ids)
    ORDER BY e.id;
    GET DIAGNOSTICS v_sent = ROW_COUNT;
    RETURN v_sent;
END
$$;
COMMENT ON FUNCTION tistate.relay_notifications(integer) IS
    'Send the pg_notify(''tistate_events'', ...) of up to p_limit committed outbox rows (oldest first) and delete them; returns the number of notifications. Call it in its own transaction, repeatedly (tistate serve and tistate relay do)';

CREATE FUNCTION tistate.notification_backlog()
RETURNS TABLE (transactions bigint, oldest timestamptz)
LANGUAGE sql
STABLE
SECURITY DEFINER
SET search_path = pg_catalog, tistate, pg_temp
AS $$
    SELECT count(*), min(created_at) FROM tistate.asset_event_outbox;
$$;
COMMENT ON FUNCTION tistate.notification_backlog() IS
    'Outbox rows not yet relayed and the age of the oldest (a growing backlog means no relay is running)';

REVOKE ALL ON FUNCTION tistate.relay_notifications(integer), tistate.notification_backlog() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tistate.relay_notifications(integer), tistate.notification_backlog()
    TO tistate_executor;
