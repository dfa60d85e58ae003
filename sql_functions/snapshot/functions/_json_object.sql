-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._json_object(p_value jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN '{}'::jsonb;
    END IF;
    IF jsonb_typeof(p_value) <> 'object' THEN
        PERFORM tistate._invalid(p_path, 'must be a JSON object');
    END IF;
    RETURN p_value;
END
$function$;

COMMENT ON FUNCTION tistate._json_object(p_value jsonb, p_path text) IS 'A JSON object ({} for null/absent), else TS422';
