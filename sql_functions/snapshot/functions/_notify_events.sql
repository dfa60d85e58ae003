-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._notify_events(p_events tistate._planned_event[], p_ti_id uuid)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    -- Delivered at commit only, so listeners never hear of an event that rolled back.
    -- SET tistate.notify_events = off skips it (NOTIFY serialises committing transactions).
    IF coalesce(current_setting('tistate.notify_events', true), '') = 'off' THEN
        RETURN;
    END IF;
    PERFORM pg_notify('tistate_events', json_build_object(
                'event_id', e.event_id, 'asset_id', e.asset_id, 'name', a.name, 'uri', a.uri,
                'ti_id', p_ti_id, 'partition_key', e.partition_key)::text)
    FROM unnest(p_events) AS e
    JOIN tistate.asset AS a ON a.id = e.asset_id
    ORDER BY e.event_id;
END
$function$;

COMMENT ON FUNCTION tistate._notify_events(p_events tistate._planned_event[], p_ti_id uuid) IS 'pg_notify(''tistate_events'', {event_id, asset_id, name, uri, ti_id, partition_key}) per event';
