-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._timestamp(p_value jsonb, p_path text, p_nullable boolean DEFAULT false)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_text text := tistate._text(p_value, p_path, 64, p_nullable);
BEGIN
    IF v_text IS NULL THEN
        RETURN NULL;
    END IF;
    -- ISO 8601 with an explicit offset: a naive timestamp would depend on the session's TimeZone.
    IF v_text !~ '^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|z|[+-]\d{2}(:?\d{2})?)$' THEN
        PERFORM tistate._invalid(p_path, 'must be an ISO 8601 datetime with a timezone offset');
    END IF;
    BEGIN
        RETURN v_text::timestamptz;
    EXCEPTION WHEN datetime_field_overflow OR invalid_datetime_format OR invalid_time_zone_displacement_value THEN
        PERFORM tistate._invalid(p_path, 'not a valid datetime');
    END;
    RETURN NULL;
END
$function$;

COMMENT ON FUNCTION tistate._timestamp(p_value jsonb, p_path text, p_nullable boolean) IS 'A timezone-aware ISO 8601 datetime, else TS422';
