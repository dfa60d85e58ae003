-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._check_limit(p_limit integer, p_field text, p_max integer)
 RETURNS integer
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF p_limit IS NULL OR p_limit < 0 OR p_limit > p_max THEN
        PERFORM tistate._invalid(p_field, format('must be between 0 and %s', p_max));
    END IF;
    RETURN p_limit;
END
$function$;

COMMENT ON FUNCTION tistate._check_limit(p_limit integer, p_field text, p_max integer) IS 'A result limit in 0..p_max, else TS422';
