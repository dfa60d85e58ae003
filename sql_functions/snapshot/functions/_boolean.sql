-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._boolean(p_value jsonb, p_path text, p_default boolean)
 RETURNS boolean
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN p_default;
    END IF;
    IF jsonb_typeof(p_value) <> 'boolean' THEN
        PERFORM tistate._invalid(p_path, 'must be a boolean');
    END IF;
    RETURN p_value::boolean;
END
$function$;

COMMENT ON FUNCTION tistate._boolean(p_value jsonb, p_path text, p_default boolean) IS 'A JSON boolean (p_default when absent), else TS422';
