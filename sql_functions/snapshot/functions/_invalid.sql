-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._invalid(p_field text, p_message text)
 RETURNS void
 LANGUAGE sql
AS $function$
    SELECT tistate._raise('TS422', format('invalid payload: %s: %s', p_field, p_message),
                          jsonb_build_object('reason', 'invalid_payload', 'field', p_field, 'message', p_message));
$function$;

COMMENT ON FUNCTION tistate._invalid(p_field text, p_message text) IS 'Raise TS422 naming the offending payload field';
