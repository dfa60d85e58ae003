-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._normalize_state_payload(p_payload jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
AS $function$
DECLARE
    v_state text := tistate._payload_state(p_payload);
BEGIN
    IF v_state = 'success' THEN
        RETURN tistate._normalize_success(p_payload);
    END IF;
    PERFORM tistate._invalid('state', format('transition to %s is not supported yet', v_state));
    RETURN NULL;
END
$function$;

COMMENT ON FUNCTION tistate._normalize_state_payload(p_payload jsonb) IS 'Validate and normalise any TIStateUpdate payload (TS422)';
