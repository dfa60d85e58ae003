-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._text(p_value jsonb, p_path text, p_max_length integer, p_nullable boolean DEFAULT true)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_text text;
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        IF NOT p_nullable THEN
            PERFORM tistate._invalid(p_path, 'field required');
        END IF;
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) <> 'string' THEN
        PERFORM tistate._invalid(p_path, 'must be a string');
    END IF;
    v_text := p_value #>> '{}';
    IF length(v_text) > p_max_length THEN
        PERFORM tistate._invalid(p_path, format('longer than %s characters', p_max_length));
    END IF;
    RETURN v_text;
END
$function$;

COMMENT ON FUNCTION tistate._text(p_value jsonb, p_path text, p_max_length integer, p_nullable boolean) IS 'A JSON string (or null) of bounded length, else TS422';
