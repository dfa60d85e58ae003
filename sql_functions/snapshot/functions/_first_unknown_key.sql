-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._first_unknown_key(p_value jsonb, p_allowed text[])
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- Only evaluated on the error path (inside a CASE branch), so its sub-select costs nothing on
    -- valid payloads.
    SELECT min(k) FROM jsonb_object_keys(p_value - p_allowed) AS k
$function$;

COMMENT ON FUNCTION tistate._first_unknown_key(p_value jsonb, p_allowed text[]) IS 'The first (sorted) key of an object that is not one of p_allowed, or NULL';
