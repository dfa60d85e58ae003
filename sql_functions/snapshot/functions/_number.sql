-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._number(p_value jsonb, p_path text)
 RETURNS double precision
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) <> 'number' THEN
        PERFORM tistate._invalid(p_path, 'must be a number');
    END IF;
    RETURN (p_value #>> '{}')::double precision;
END
$function$;

COMMENT ON FUNCTION tistate._number(p_value jsonb, p_path text) IS 'A JSON number (or null) as double precision, else TS422';
