-- defined by migration 0009_privileges.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._airflow_grant_problems(p_schema name)
 RETURNS SETOF text
 LANGUAGE sql
 STABLE
AS $function$
    SELECT format('tistate_owner lacks %s%s on %I.%I', g.privilege, ' (' || g.on_column || ')', p_schema, g.table_name)
    FROM tistate.airflow_grant AS g
    WHERE to_regclass(format('%I.%I', p_schema, g.table_name)) IS NOT NULL
      AND NOT CASE WHEN g.privilege = 'USAGE'
                   THEN has_sequence_privilege('tistate_owner', format('%I.%I', p_schema, g.table_name), 'USAGE')
                   WHEN g.on_column IS NOT NULL
                   THEN has_column_privilege('tistate_owner', format('%I.%I', p_schema, g.table_name), g.on_column, g.privilege)
                   ELSE has_table_privilege('tistate_owner', format('%I.%I', p_schema, g.table_name), g.privilege) END
    ORDER BY g.table_name, g.privilege
$function$;
