-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._invalid_state(p_ctx tistate._ti_context, p_message text)
 RETURNS void
 LANGUAGE sql
AS $function$
    SELECT tistate._raise('TS409', p_message,
                          jsonb_build_object('reason', 'invalid_state', 'message', p_message,
                                             'previous_state', (p_ctx.ti).state));
$function$;

COMMENT ON FUNCTION tistate._invalid_state(p_ctx tistate._ti_context, p_message text) IS 'TS409 with previous_state in DETAIL';
