-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._raise_problem(p_path text, p_problem text)
 RETURNS void
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    -- '<sub-path>: <message>': messages never contain ': ', sub-paths may (a key is the client's).
    v_cut integer := position(' :' IN reverse(p_problem));
BEGIN
    IF p_problem IS NOT NULL THEN
        PERFORM tistate._invalid(p_path || left(p_problem, length(p_problem) - v_cut - 1), right(p_problem, v_cut - 1));
    END IF;
END
$function$;

COMMENT ON FUNCTION tistate._raise_problem(p_path text, p_problem text) IS 'TS422 for a problem ''<sub-path>: <message>'' found under p_path (nothing when p_problem is NULL)';
