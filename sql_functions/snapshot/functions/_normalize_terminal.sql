-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._normalize_terminal(p_payload jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    -- TITerminalStatePayload: failed, skipped, removed, upstream_failed.
    PERFORM tistate._check_object(p_payload, '', ARRAY['state', 'end_date', 'rendered_map_index'], ARRAY['end_date']);
    RETURN tistate._with_rendered_map_index(
        jsonb_build_object('state', p_payload ->> 'state',
                           'end_date', tistate._timestamp(p_payload -> 'end_date', 'end_date')),
        p_payload);
END
$function$;

COMMENT ON FUNCTION tistate._normalize_terminal(p_payload jsonb) IS 'Validate (TS422) and normalise a TITerminalStatePayload';
