-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._set_lock_timeout(p_lock_timeout interval)
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_value text;
BEGIN
    -- Precedence: the call's p_lock_timeout, then the GUC tistate.lock_timeout, then 2 s. The 2 s
    -- default is every locking public function's own `SET lock_timeout = '2s'` (which also restores
    -- the caller's setting on return), so nothing is set when nothing overrides it.
    -- (Assignments, not PERFORM: a plain expression skips the executor.)
    IF p_lock_timeout IS NOT NULL THEN
        v_value := set_config('lock_timeout', greatest(1, (extract(epoch FROM p_lock_timeout) * 1000)::bigint)::text, true);
    ELSIF coalesce(current_setting('tistate.lock_timeout', true), '') <> '' THEN
        v_value := set_config('lock_timeout', current_setting('tistate.lock_timeout'), true);
    END IF;
END
$function$;

COMMENT ON FUNCTION tistate._set_lock_timeout(p_lock_timeout interval) IS 'Bound every lock wait of the current call';
