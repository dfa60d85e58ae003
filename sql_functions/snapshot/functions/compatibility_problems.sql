-- defined by migration 0009_privileges.sql
-- EXECUTE granted to: tistate_executor
CREATE OR REPLACE FUNCTION tistate.compatibility_problems()
 RETURNS SETOF text
 LANGUAGE plpgsql
 STABLE SECURITY DEFINER
 SET search_path TO 'pg_catalog', 'tistate', 'pg_temp'
AS $function$
DECLARE
    v_schema name := (SELECT i.airflow_schema FROM tistate.installation AS i);
BEGIN
    IF NOT tistate._is_airflow() THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT p FROM tistate._airflow_shape_problems(v_schema) AS p;
    RETURN QUERY SELECT p FROM tistate._airflow_grant_problems(v_schema) AS p;
END
$function$;

COMMENT ON FUNCTION tistate.compatibility_problems() IS 'Why tistate cannot run safely on this database now, one line each (empty when it can): in Airflow mode an unsupported revision, a changed column, multi-team, or a missing grant. tistate db verify, serve and /ready check it';
