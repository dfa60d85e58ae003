-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._text_problem(p_value jsonb, p_max_length integer)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- An optional string field of at most p_max_length characters; absent or null is valid here.
    SELECT CASE
        WHEN p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN NULL
        WHEN jsonb_typeof(p_value) <> 'string' THEN 'must be a string'
        WHEN length(p_value #>> '{}') > p_max_length THEN 'longer than ' || p_max_length::text || ' characters'
    END
$function$;

COMMENT ON FUNCTION tistate._text_problem(p_value jsonb, p_max_length integer) IS 'What is wrong with an optional string of at most p_max_length characters, NULL when valid or absent';
