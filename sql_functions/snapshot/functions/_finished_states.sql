-- defined by migration 0012_state_names.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._finished_states()
 RETURNS text[]
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- Airflow's State.finished: the try is over and will not run again by itself.
    SELECT ARRAY['success', 'failed', 'skipped', 'upstream_failed', 'removed']
$function$;

COMMENT ON FUNCTION tistate._finished_states() IS 'The finished states: success, failed, skipped, upstream_failed, removed';
