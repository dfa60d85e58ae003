-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._settle_privileges()
 RETURNS void
 LANGUAGE plpgsql
AS $function$
DECLARE
    v_function regprocedure;
BEGIN
    FOR v_function IN
        SELECT p.oid::regprocedure FROM pg_proc AS p
        WHERE p.pronamespace = 'tistate'::regnamespace AND p.proowner <> 'tistate_owner'::regrole
    LOOP
        EXECUTE format('ALTER FUNCTION %s OWNER TO tistate_owner', v_function);
    END LOOP;
    REVOKE ALL ON ALL FUNCTIONS IN SCHEMA tistate FROM PUBLIC;
END
$function$;

COMMENT ON FUNCTION tistate._settle_privileges() IS 'Run at the end of each migration after 0009: new functions owned by tistate_owner, none executable by PUBLIC';
