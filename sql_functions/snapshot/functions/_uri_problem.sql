-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._uri_problem(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    SELECT coalesce(tistate._text_problem(p_value, 1500), CASE
        WHEN p_value #>> '{}' = '' THEN 'must not be empty'
        WHEN p_value #>> '{}' !~ '^[\x01-\x7f]*$' THEN 'must be ASCII'
        WHEN lower(p_value #>> '{}') ~ '^airflow://' THEN 'the airflow:// scheme is reserved'
    END)
$function$;

COMMENT ON FUNCTION tistate._uri_problem(p_value jsonb) IS 'What is wrong with an asset uri (ASCII string, 1-1500 characters, not airflow://), NULL when valid or absent';
