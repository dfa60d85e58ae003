-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._delay_seconds(p_value jsonb, p_path text)
 RETURNS double precision
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_seconds double precision := tistate._duration_seconds(p_value, p_path);
BEGIN
    -- A delay or a timeout from now: a duration (number of seconds or ISO 8601), not negative (a
    -- retry delay or a trigger timeout in the past is a client's mistake), at most 100 years.
    IF v_seconds < 0 THEN
        PERFORM tistate._invalid(p_path, 'must not be negative');
    END IF;
    RETURN v_seconds;
END
$function$;

COMMENT ON FUNCTION tistate._delay_seconds(p_value jsonb, p_path text) IS 'A non-negative duration in seconds (number or ISO 8601), at most 100 years; TS422 otherwise';
