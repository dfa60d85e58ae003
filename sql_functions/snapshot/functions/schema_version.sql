-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: tistate_executor
CREATE OR REPLACE FUNCTION tistate.schema_version()
 RETURNS integer
 LANGUAGE sql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
AS $function$
    SELECT coalesce(max(version), 0) FROM tistate.schema_migrations;
$function$;

COMMENT ON FUNCTION tistate.schema_version() IS 'The newest applied migration version (0 when none)';
