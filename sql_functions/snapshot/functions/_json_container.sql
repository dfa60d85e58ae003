-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._json_container(p_value jsonb, p_path text, p_type text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    -- An optional JSON object or array: absent or null is the empty one.
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN CASE p_type WHEN 'object' THEN '{}'::jsonb ELSE '[]'::jsonb END;
    END IF;
    IF jsonb_typeof(p_value) <> p_type THEN
        PERFORM tistate._invalid(p_path, 'must be a JSON ' || p_type);
    END IF;
    RETURN p_value;
END
$function$;

COMMENT ON FUNCTION tistate._json_container(p_value jsonb, p_path text, p_type text) IS 'An optional JSON object or array (p_type): the value, or the empty one when absent or null; TS422 for another type';
