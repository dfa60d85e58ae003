-- defined by migration 0001_tistate_schema.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._function_search_path()
 RETURNS text
 LANGUAGE sql
 STABLE
AS $function$
    SELECT 'pg_catalog, tistate' || CASE WHEN i.flavor = 'airflow' THEN ', ' || quote_ident(i.airflow_schema) ELSE '' END
           || ', pg_temp'
    FROM tistate.installation AS i
$function$;

COMMENT ON FUNCTION tistate._function_search_path() IS 'The search_path the functions of this flavor are created with';
