-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._apply_state(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone)
 RETURNS tistate.state_update_result
 LANGUAGE plpgsql
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
AS $function$
BEGIN
    IF p_payload ->> 'state' = 'success' THEN
        RETURN tistate._apply_success(p_ctx, p_payload, p_now);
    END IF;
    PERFORM tistate._invalid('state', format('transition to %s is not supported yet', p_payload ->> 'state'));
    RETURN NULL;
END
$function$;

COMMENT ON FUNCTION tistate._apply_state(p_ctx tistate._ti_context, p_payload jsonb, p_now timestamp with time zone) IS 'Dispatch a validated payload to its transition';
