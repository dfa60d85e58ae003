-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._check_object(p_value jsonb, p_path text, p_allowed text[], p_required text[] DEFAULT '{}'::text[])
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_key text;
BEGIN
    IF p_value IS NULL OR jsonb_typeof(p_value) <> 'object' THEN
        PERFORM tistate._invalid(p_path, 'must be a JSON object');
    END IF;
    v_key := tistate._first_unknown_key(p_value, p_allowed);
    IF v_key IS NOT NULL THEN
        PERFORM tistate._invalid(concat_ws('.', nullif(p_path, ''), v_key), 'unknown field');
    END IF;
    SELECT r INTO v_key FROM unnest(p_required) AS r
    WHERE NOT p_value ? r OR jsonb_typeof(p_value -> r) = 'null' ORDER BY r LIMIT 1;
    IF v_key IS NOT NULL THEN
        PERFORM tistate._invalid(concat_ws('.', nullif(p_path, ''), v_key), 'field required');
    END IF;
    RETURN p_value;
END
$function$;

COMMENT ON FUNCTION tistate._check_object(p_value jsonb, p_path text, p_allowed text[], p_required text[]) IS 'TS422 unless p_value is an object with only allowed keys and every required key non-null';
