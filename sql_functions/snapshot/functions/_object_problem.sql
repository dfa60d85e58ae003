-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._object_problem(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    SELECT CASE WHEN p_value IS NOT NULL AND jsonb_typeof(p_value) NOT IN ('null', 'object')
                THEN 'must be a JSON object' END
$function$;

COMMENT ON FUNCTION tistate._object_problem(p_value jsonb) IS 'What is wrong with an optional JSON object field (extra), NULL when an object, null or absent';
