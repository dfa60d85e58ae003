-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._name_problem(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- An asset or alias name; absent or null is valid here (the caller knows when it is required).
    -- Names are unique-indexed: a btree entry holds at most about 2700 bytes (PostgreSQL's index
    -- row limit, SQLSTATE 54000), which 1500 characters of multi-byte text can exceed.
    SELECT coalesce(tistate._text_problem(p_value, 1500), CASE
        WHEN p_value #>> '{}' = '' THEN 'must not be empty'
        WHEN octet_length(p_value #>> '{}') > 2600 THEN 'longer than 2600 bytes'
    END)
$function$;

COMMENT ON FUNCTION tistate._name_problem(p_value jsonb) IS 'What is wrong with an asset or alias name (string, 1-1500 characters, at most 2600 bytes), NULL when valid or absent';
