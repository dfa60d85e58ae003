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
    PERFORM pg_notify('tistate_events', json_build_object(
                'event_id', e.event_id, 'asset_id', e.asset_id, 'name', a.name, 'uri', a.uri,
                'ti_id', p_ti_id, 'partition_key', e.partition_key)::text)
    FROM unnest(p_events) AS e
    JOIN tistate.asset AS a ON a.id = e.asset_id
    ORDER BY e.event_id;
END
$function$;

COMMENT ON FUNCTION tistate._notify_events(p_events tistate._planned_event[], p_ti_id uuid) IS 'Announce events on tistate_events: pg_notify now (notify_events on), an outbox row for the relay (relay), or nothing (off)';
