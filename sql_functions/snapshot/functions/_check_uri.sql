-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._check_uri(p_uri text, p_path text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    PERFORM tistate._invalid_if(p_path, tistate._uri_problem(to_jsonb(p_uri)));
    RETURN p_uri;
END
$function$;

COMMENT ON FUNCTION tistate._check_uri(p_uri text, p_path text) IS 'Airflow''s asset uri rules: non-empty ASCII, not airflow://';
