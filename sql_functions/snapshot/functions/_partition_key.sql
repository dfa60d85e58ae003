-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._partition_key(p_value jsonb, p_path text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_key text;
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) <> 'string' THEN
        PERFORM tistate._invalid(p_path, 'must be a string');
    END IF;
    v_key := p_value #>> '{}';
    -- Python's str.strip() whitespace of the ASCII range (E'\v' is not an escape in PostgreSQL).
    IF btrim(v_key, E' \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f') = '' THEN
        PERFORM tistate._invalid(p_path, 'must not be empty or whitespace');
    END IF;
    IF length(v_key) > 250 THEN
        PERFORM tistate._invalid(p_path, 'longer than 250 characters');
    END IF;
    RETURN v_key;
END
$function$;

COMMENT ON FUNCTION tistate._partition_key(p_value jsonb, p_path text) IS 'Airflow''s partition key rule: null, or 1-250 non-blank characters';
