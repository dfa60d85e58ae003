-- defined by migration 0001_tistate_schema.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._airflow_shape_problems(p_schema name)
 RETURNS SETOF text
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_revision text;
    v_teams    boolean;
BEGIN
    IF to_regclass(format('%I.alembic_version', p_schema)) IS NULL THEN
        RETURN NEXT format('not an Airflow database: no table %I.alembic_version (run `airflow db migrate` first, '
                           'or pass the schema Airflow uses with --airflow-schema)', p_schema);
        RETURN;
    END IF;
    EXECUTE format('SELECT string_agg(version_num, '','') FROM %I.alembic_version', p_schema) INTO v_revision;
    IF NOT EXISTS (SELECT 1 FROM tistate.airflow_revision AS r WHERE r.revision = v_revision) THEN
        RETURN NEXT format('Airflow database at alembic revision %s, which this tistate does not support; supported: %s',
                           coalesce(v_revision, '(none)'),
                           (SELECT string_agg(r.revision || ' (Airflow ' || r.airflow || ')', ', ') FROM tistate.airflow_revision AS r));
    END IF;
    RETURN QUERY
        SELECT format('column %I.%I: expected %s%s%s, found %s', e.table_name, e.column_name,
                      e.data_type, CASE WHEN e.not_null THEN ' NOT NULL' ELSE ' NULL' END,
                      CASE WHEN e.has_default THEN ' with a default' ELSE ' without default' END,
                      CASE WHEN a.attname IS NULL THEN 'no such column'
                           ELSE format_type(a.atttypid, a.atttypmod)
                                || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE ' NULL' END
                                || CASE WHEN a.atthasdef THEN ' with a default' ELSE ' without default' END END)
        FROM tistate.airflow_column AS e
        LEFT JOIN pg_catalog.pg_attribute AS a
               ON a.attrelid = to_regclass(format('%I.%I', p_schema, e.table_name))
              AND a.attname = e.column_name AND a.attnum > 0 AND NOT a.attisdropped
        WHERE a.attname IS NULL
           OR format_type(a.atttypid, a.atttypmod) <> e.data_type
           OR a.attnotnull <> e.not_null
           OR a.atthasdef <> e.has_default
        ORDER BY e.table_name, e.column_name;
    -- Multi-team deployments filter producers and consumers by team; tistate does not.
    IF to_regclass(format('%I.team', p_schema)) IS NOT NULL THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I.team)', p_schema) INTO v_teams;
        IF v_teams THEN
            RETURN NEXT 'multi-team deployment (rows in team): not supported by tistate';
        END IF;
    END IF;
END
$function$;

COMMENT ON FUNCTION tistate._airflow_shape_problems(p_schema name) IS 'Why this schema is not an Airflow database tistate supports (revision, column fingerprint, multi-team); empty when it is';
