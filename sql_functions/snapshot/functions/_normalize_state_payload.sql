-- defined by migration 0012_state_names.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._normalize_state_payload(p_payload jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_state text;
BEGIN
    -- The usual payload first, without the generic state check; every other state below.
    IF jsonb_typeof(p_payload) = 'object' AND p_payload -> 'state' = '"success"'::jsonb THEN
        RETURN tistate._normalize_success(p_payload);
    END IF;
    v_state := tistate._payload_state(p_payload);
    CASE
        WHEN v_state = ANY (tistate._terminal_payload_states()) THEN
            RETURN tistate._normalize_terminal(p_payload);
        WHEN v_state = 'up_for_retry' THEN
            RETURN tistate._normalize_retry(p_payload);
        WHEN v_state = 'up_for_reschedule' THEN
            RETURN tistate._normalize_reschedule(p_payload);
        WHEN v_state = 'deferred' THEN
            RETURN tistate._normalize_deferred(p_payload);
        ELSE
            -- scheduled, queued, restarting: TITargetStatePayload, the state alone. Valid as a
            -- payload (so the same-state no-op still answers), refused by _apply_state with TS409.
            PERFORM tistate._check_object(p_payload, '', ARRAY['state']);
            RETURN jsonb_build_object('state', v_state);
    END CASE;
END
$function$;

COMMENT ON FUNCTION tistate._normalize_state_payload(p_payload jsonb) IS 'Validate and normalise any TIStateUpdate payload (TS422)';
