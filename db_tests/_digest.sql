-- The one "nothing was written" fingerprint: of the pgTAP files (`\ir` from _fixtures.sql) and of
-- the Python tests (tests/faultkit.table_snapshot runs this file on its connection).
-- Every table tistate writes (schema tistate, and in Airflow mode Airflow's tables in public) by
-- qualified name: its row count and the md5 of all its rows as text; with p_sequences also where
-- each sequence of those schemas stands (a refusal before any write draws no id).
CREATE OR REPLACE FUNCTION pg_temp.table_digests(p_sequences boolean DEFAULT false)
RETURNS TABLE (name text, digest text)
LANGUAGE plpgsql
AS $$
DECLARE
    v_name text;
BEGIN
    FOR v_name IN
        SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class AS c
        JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p')
          AND (n.nspname = 'tistate'
               OR n.nspname = 'public' AND c.relname IN (SELECT table_name FROM tistate.airflow_column))
        ORDER BY 1
    LOOP
        name := v_name;
        EXECUTE format('SELECT count(*) || '':'' || coalesce(md5(string_agg(t::text, '','' ORDER BY t::text)), '''') FROM %s AS t', v_name)
        INTO digest;
        RETURN NEXT;
    END LOOP;
    IF p_sequences THEN
        FOR v_name IN
            SELECT format('%I.%I', n.nspname, c.relname) FROM pg_catalog.pg_class AS c
            JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
            WHERE c.relkind = 'S' AND n.nspname IN ('tistate', 'public')
            ORDER BY 1
        LOOP
            name := v_name;
            EXECUTE format('SELECT last_value || '':'' || is_called FROM %s', v_name) INTO digest;
            RETURN NEXT;
        END LOOP;
    END IF;
END
$$;
