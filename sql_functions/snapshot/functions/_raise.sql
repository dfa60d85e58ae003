-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._raise(p_code text, p_message text, p_detail jsonb DEFAULT NULL::jsonb, p_hint text DEFAULT NULL::text)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
BEGIN
    -- The SQLSTATE is the contract (see wrapper/tistate/errors.py); DETAIL is JSON for machines.
    IF p_hint IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = p_code, MESSAGE = p_message, DETAIL = coalesce(p_detail::text, '');
    END IF;
    RAISE EXCEPTION USING ERRCODE = p_code, MESSAGE = p_message, DETAIL = coalesce(p_detail::text, ''), HINT = p_hint;
END
$function$;

COMMENT ON FUNCTION tistate._raise(p_code text, p_message text, p_detail jsonb, p_hint text) IS 'Raise a TSxxx error with a JSON DETAIL';
