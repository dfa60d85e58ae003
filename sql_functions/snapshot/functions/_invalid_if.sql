-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._invalid_if(p_path text, p_problem text)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF p_problem IS NOT NULL THEN
        PERFORM tistate._invalid(p_path, p_problem);
    END IF;
END
$function$;

COMMENT ON FUNCTION tistate._invalid_if(p_path text, p_problem text) IS 'TS422 naming p_path when a rule found a problem (p_problem not NULL)';
