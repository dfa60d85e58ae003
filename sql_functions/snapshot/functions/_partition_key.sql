-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._partition_key(p_value jsonb, p_path text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    PERFORM tistate._invalid_if(p_path, tistate._partition_key_problem(p_value));
    RETURN p_value #>> '{}';
END
$function$;

COMMENT ON FUNCTION tistate._partition_key(p_value jsonb, p_path text) IS 'Airflow''s partition key rule: null, or 1-250 non-blank characters';
