-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._run_dag_version(p_dag_id text, p_run_id text)
 RETURNS uuid
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    -- Airflow mode (PL/pgSQL: the standalone tables have no dag_version): the DAG version a run's
    -- tasks follow, as Airflow's API server picks it: the version the run was created with when
    -- the run is pinned to a bundle version, else the DAG's latest version.
    RETURN coalesce(
        (SELECT dr.created_dag_version_id FROM dag_run AS dr
         WHERE dr.dag_id = p_dag_id AND dr.run_id = p_run_id AND dr.bundle_version IS NOT NULL),
        (SELECT v.id FROM dag_version AS v WHERE v.dag_id = p_dag_id ORDER BY v.version_number DESC LIMIT 1));
END
$function$;

COMMENT ON FUNCTION tistate._run_dag_version(p_dag_id text, p_run_id text) IS 'Airflow mode: the dag_version a run follows (its created version if pinned to a bundle version, else the latest)';
