-- defined by migration 0001_tistate_schema.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._is_airflow()
 RETURNS boolean
 LANGUAGE sql
 STABLE
AS $function$
    SELECT i.flavor = 'airflow' FROM tistate.installation AS i
$function$;

COMMENT ON FUNCTION tistate._is_airflow() IS 'True when tistate runs on Airflow''s own tables';
