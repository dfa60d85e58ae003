-- defined by migration 0012_state_names.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._payload_state(p_payload jsonb)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_state text;
BEGIN
    IF p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN
        PERFORM tistate._invalid('', 'the payload must be a JSON object');
    END IF;
    v_state := tistate._text(p_payload -> 'state', 'state', 20, false);
    -- Any state but running (a worker moves its try out of running).
    IF v_state = 'running' OR v_state <> ALL (tistate._states()) THEN
        PERFORM tistate._invalid('state', format('%s is not a state a task instance can be updated to', v_state));
    END IF;
    RETURN v_state;
END
$function$;

COMMENT ON FUNCTION tistate._payload_state(p_payload jsonb) IS 'The TIStateUpdate discriminator: a known target state, else TS422';
