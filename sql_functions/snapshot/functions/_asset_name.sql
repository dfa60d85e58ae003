-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._asset_name(p_value jsonb, p_path text, p_nullable boolean DEFAULT false)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    PERFORM tistate._invalid_if(p_path, tistate._name_problem(p_value));
    IF NOT p_nullable AND (p_value IS NULL OR jsonb_typeof(p_value) = 'null') THEN
        PERFORM tistate._invalid(p_path, 'field required');
    END IF;
    RETURN p_value #>> '{}';
END
$function$;

COMMENT ON FUNCTION tistate._asset_name(p_value jsonb, p_path text, p_nullable boolean) IS 'A non-empty asset or alias name of at most 1500 characters';
