-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._notification(p_event_id integer, p_asset_id integer, p_ti_id uuid, p_partition_key text)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- Ids and the partition key (at most 250 characters) only: at most about 1.2 kB, far below
    -- NOTIFY's 8000-byte limit whatever the asset's name or uri, so no event can make a
    -- notification fail. Listeners read the rest (tistate.asset_events).
    SELECT json_build_object('event_id', p_event_id, 'asset_id', p_asset_id, 'ti_id', p_ti_id,
                             'partition_key', p_partition_key)::text
$function$;

COMMENT ON FUNCTION tistate._notification(p_event_id integer, p_asset_id integer, p_ti_id uuid, p_partition_key text) IS 'The tistate_events payload of one event: ids and partition key only, bounded by construction';
