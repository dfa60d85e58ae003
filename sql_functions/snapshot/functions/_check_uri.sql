-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._check_uri(p_uri text, p_path text)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    IF p_uri IS NULL THEN
        RETURN NULL;
    END IF;
    IF p_uri = '' THEN
        PERFORM tistate._invalid(p_path, 'must not be empty');
    END IF;
    IF p_uri !~ '^[\x01-\x7f]*$' THEN
        PERFORM tistate._invalid(p_path, 'must be ASCII');
    END IF;
    IF lower(p_uri) ~ '^airflow://' THEN
        PERFORM tistate._invalid(p_path, 'the airflow:// scheme is reserved');
    END IF;
    RETURN p_uri;
END
$function$;

COMMENT ON FUNCTION tistate._check_uri(p_uri text, p_path text) IS 'Airflow''s asset uri rules: non-empty ASCII, not airflow://';
