-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._text(p_value jsonb, p_path text, p_max_length integer, p_nullable boolean DEFAULT true)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF NOT p_nullable AND (p_value IS NULL OR jsonb_typeof(p_value) = 'null') THEN
        PERFORM tistate._invalid(p_path, 'field required');
    END IF;
    PERFORM tistate._invalid_if(p_path, tistate._text_problem(p_value, p_max_length));
    RETURN p_value #>> '{}';
END
$function$;

COMMENT ON FUNCTION tistate._text(p_value jsonb, p_path text, p_max_length integer, p_nullable boolean) IS 'A JSON string (or null) of bounded length, else TS422';
