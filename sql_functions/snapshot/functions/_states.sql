-- defined by migration 0012_state_names.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._states()
 RETURNS text[]
 LANGUAGE sql
 STABLE
AS $function$
    SELECT enum_range(NULL::tistate.ti_state)::text[]
$function$;

COMMENT ON FUNCTION tistate._states() IS 'Every task-instance state name (tistate.ti_state)';
