-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._duration_seconds(p_value jsonb, p_path text)
 RETURNS double precision
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_text    text;
    v_m       text[];
    v_seconds double precision;
BEGIN
    -- pydantic's timedelta input: a number of seconds, or an ISO 8601 duration
    -- ([-]P[nY][nM][nW][nD][T[nH][nM][nS]], a year = 365 days and a month = 30 days, as pydantic).
    IF p_value IS NULL OR jsonb_typeof(p_value) = 'null' THEN
        RETURN NULL;
    END IF;
    IF jsonb_typeof(p_value) = 'number' THEN
        v_seconds := (p_value #>> '{}')::double precision;
    ELSIF jsonb_typeof(p_value) = 'string' THEN
        v_text := upper(p_value #>> '{}');
        v_m := regexp_match(v_text,
            '^([+-])?P(?=\d|T\d)(?:(\d+(?:\.\d+)?)Y)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)W)?(?:(\d+(?:\.\d+)?)D)?'
            '(?:T(?=\d)(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?)?$');
        IF v_m IS NULL THEN
            PERFORM tistate._invalid(p_path, 'must be a number of seconds or an ISO 8601 duration');
        END IF;
        v_seconds := coalesce(v_m[2]::double precision, 0) * 365 * 86400
                   + coalesce(v_m[3]::double precision, 0) * 30 * 86400
                   + coalesce(v_m[4]::double precision, 0) * 7 * 86400
                   + coalesce(v_m[5]::double precision, 0) * 86400
                   + coalesce(v_m[6]::double precision, 0) * 3600
                   + coalesce(v_m[7]::double precision, 0) * 60
                   + coalesce(v_m[8]::double precision, 0);
        IF v_m[1] = '-' THEN
            v_seconds := -v_seconds;
        END IF;
    ELSE
        PERFORM tistate._invalid(p_path, 'must be a number of seconds or an ISO 8601 duration');
    END IF;
    -- Bounded so that p_now + duration can never overflow timestamptz.
    IF abs(v_seconds) > 100.0 * 365 * 86400 THEN
        PERFORM tistate._invalid(p_path, 'longer than 100 years');
    END IF;
    RETURN v_seconds;
END
$function$;

COMMENT ON FUNCTION tistate._duration_seconds(p_value jsonb, p_path text) IS 'A pydantic timedelta (seconds number or ISO 8601 duration string, at most 100 years) in seconds, else TS422';
