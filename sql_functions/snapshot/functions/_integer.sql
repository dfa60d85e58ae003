-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._integer(p_value jsonb, p_path text, p_nullable boolean DEFAULT false)
 RETURNS integer
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_number numeric;
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        IF NOT p_nullable THEN
            PERFORM tistate._invalid(p_path, 'field required');
        END IF;
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) <> 'number' THEN
        PERFORM tistate._invalid(p_path, 'must be an integer');
    END IF;
    v_number := (p_value #>> '{}')::numeric;
    IF v_number <> trunc(v_number) OR v_number NOT BETWEEN -2147483648 AND 2147483647 THEN
        PERFORM tistate._invalid(p_path, 'must be a 32-bit integer');
    END IF;
    RETURN v_number::integer;
END
$function$;

COMMENT ON FUNCTION tistate._integer(p_value jsonb, p_path text, p_nullable boolean) IS 'A JSON integer in int4 range, else TS422';
