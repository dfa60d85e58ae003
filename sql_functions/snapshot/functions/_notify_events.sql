-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._notify_events(p_events tistate._planned_event[], p_ti_id uuid)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
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
    PERFORM pg_notify('tistate_events', tistate._notification(e.event_id, e.asset_id, p_ti_id, e.partition_key))
    FROM unnest(p_events) AS e
    ORDER BY e.event_id;
END
$function$;

COMMENT ON FUNCTION tistate._notify_events(p_events tistate._planned_event[], p_ti_id uuid) IS 'Announce events on tistate_events: pg_notify now (notify_events on), an outbox row for the relay (relay), or nothing (off)';
