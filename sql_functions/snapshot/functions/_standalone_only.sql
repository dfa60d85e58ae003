-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._standalone_only(p_function text, p_owner text)
 RETURNS void
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    -- In Airflow mode the DAG processor and the scheduler own dag, dag_run and task_instance rows.
    IF tistate._is_airflow() THEN
        PERFORM tistate._raise('TS501', format('%s is not available on an Airflow database: %s', p_function, p_owner),
                               jsonb_build_object('reason', 'airflow_mode', 'function', p_function),
                               'in Airflow mode, let Airflow do this; tistate runs the task-instance transitions');
    END IF;
END
$function$;

COMMENT ON FUNCTION tistate._standalone_only(p_function text, p_owner text) IS 'TS501 when called on an Airflow database (for define_dag, create_dag_run, ti_queue)';
