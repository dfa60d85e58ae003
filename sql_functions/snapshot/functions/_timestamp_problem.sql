-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._timestamp_problem(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- ISO 8601 with an explicit offset: a naive timestamp would depend on the session's TimeZone.
    -- (Whether the date exists, 30 February, is found by the cast in _timestamp.)
    SELECT coalesce(tistate._text_problem(p_value, 64), CASE
        WHEN p_value #>> '{}' !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}(:?\d{2})?)$'
            THEN 'must be an ISO 8601 datetime with a timezone offset'
    END)
$function$;

COMMENT ON FUNCTION tistate._timestamp_problem(p_value jsonb) IS 'What is wrong with the shape of a datetime (an ISO 8601 string with an offset), NULL when valid or absent';
