-- defined by migration 0012_state_names.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._terminal_payload_states()
 RETURNS text[]
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- TITerminalStatePayload: the finished states a worker reports without asset events.
    SELECT array_remove(tistate._finished_states(), 'success')
$function$;

COMMENT ON FUNCTION tistate._terminal_payload_states() IS 'The states of a TITerminalStatePayload: the finished states but success';
