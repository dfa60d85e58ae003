-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._partition_key_problem(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- Python's str.strip() whitespace of the ASCII range (E'\v' is not an escape in PostgreSQL).
    SELECT coalesce(tistate._text_problem(p_value, 250), CASE
        WHEN btrim(p_value #>> '{}', E' \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f') = '' THEN 'must not be empty or whitespace'
    END)
$function$;

COMMENT ON FUNCTION tistate._partition_key_problem(p_value jsonb) IS 'What is wrong with a partition key (a non-blank string of at most 250 characters), NULL when valid or absent';
