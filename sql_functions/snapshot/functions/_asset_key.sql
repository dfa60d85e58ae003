-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._asset_key(p_value jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    PERFORM tistate._raise_problem(p_path, tistate._asset_key_problem(p_value));
    RETURN jsonb_build_object('name', p_value ->> 'name', 'uri', p_value ->> 'uri');
END
$function$;

COMMENT ON FUNCTION tistate._asset_key(p_value jsonb, p_path text) IS 'Validate an asset key {name, uri}';
