-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._timestamp(p_value jsonb, p_path text, p_nullable boolean DEFAULT false)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_text text := p_value #>> '{}';
BEGIN
    PERFORM tistate._invalid_if(p_path, tistate._timestamp_problem(p_value));
    IF v_text IS NULL THEN
        IF NOT p_nullable THEN
            PERFORM tistate._invalid(p_path, 'field required');
        END IF;
        RETURN NULL;
    END IF;
    -- A value that is certainly a date that exists (no 29 February, offsets up to 14 h) is cast
    -- directly; anything else is cast in a subtransaction that turns a bad date into TS422.
    IF v_text ~ '^[1-9]\d{3}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?(?:Z|z|[+-](?:0\d|1[0-4])(?::?[0-5]\d)?)$' THEN
        RETURN v_text::timestamptz;
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
