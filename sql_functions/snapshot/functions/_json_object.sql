-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._json_object(p_value jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE sql
 IMMUTABLE
AS $function$
    SELECT tistate._json_container(p_value, p_path, 'object')
$function$;

COMMENT ON FUNCTION tistate._json_object(p_value jsonb, p_path text) IS 'A JSON object ({} for null/absent), else TS422';
