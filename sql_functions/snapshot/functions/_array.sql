-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._array(p_value jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE sql
 IMMUTABLE
AS $function$
    SELECT tistate._json_container(p_value, p_path, 'array')
$function$;

COMMENT ON FUNCTION tistate._array(p_value jsonb, p_path text) IS 'A JSON array ([] for null/absent), else TS422';
