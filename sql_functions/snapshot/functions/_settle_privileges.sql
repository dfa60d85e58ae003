-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._settle_privileges()
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_statement text;
BEGIN
    FOR v_statement IN
        SELECT format('ALTER FUNCTION %s OWNER TO tistate_owner', p.oid::regprocedure)
        FROM pg_proc AS p
        WHERE p.pronamespace = 'tistate'::regnamespace AND p.proowner <> 'tistate_owner'::regrole
        UNION ALL
        SELECT format('ALTER %s tistate.%I OWNER TO tistate_owner',
                      CASE c.relkind WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END, c.relname)
        FROM pg_class AS c
        WHERE c.relnamespace = 'tistate'::regnamespace AND c.relkind IN ('r', 'p')
          AND c.relowner <> 'tistate_owner'::regrole
        UNION ALL
        SELECT format('ALTER TYPE tistate.%I OWNER TO tistate_owner', t.typname)
        FROM pg_type AS t
        WHERE t.typnamespace = 'tistate'::regnamespace AND t.typtype IN ('c', 'e', 'd')
          AND t.typowner <> 'tistate_owner'::regrole
          AND NOT EXISTS (SELECT 1 FROM pg_class AS c WHERE c.oid = t.typrelid AND c.relkind <> 'c')
    LOOP
        EXECUTE v_statement;
    END LOOP;
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA tistate FROM PUBLIC;
END
$function$;

COMMENT ON FUNCTION tistate._settle_privileges() IS 'Run at the end of each migration after 0009: new functions, tables and types owned by tistate_owner, no function executable by PUBLIC';
