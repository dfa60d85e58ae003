-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._caller_now(p_now timestamp with time zone)
 RETURNS timestamp with time zone
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    -- The worker functions take p_now so tests and operators can state the time; a worker login
    -- cannot move it (a heartbeat at 'infinity' would never go stale): within 5 minutes of the
    -- database clock it is the caller's (clocks drift a little), further only for an operator.
    IF isfinite(p_now) THEN
        IF abs(extract(epoch FROM p_now - clock_timestamp())) <= 300 THEN
            RETURN p_now;
        END IF;
    END IF;
    IF pg_has_role(session_user, 'tistate_operator', 'USAGE') THEN
        RETURN p_now;
    END IF;
    PERFORM tistate._raise('TS403', 'only an operator may choose the time of a transition (p_now)',
                           jsonb_build_object('reason', 'forbidden', 'field', 'p_now'),
                           'leave p_now out: the database clock is used');
    RETURN NULL;
END
$function$;

COMMENT ON FUNCTION tistate._caller_now(p_now timestamp with time zone) IS 'p_now as given when within 5 minutes of the database clock or when the session user is an operator (tistate_operator); TS403 otherwise';
