-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._asset_key(p_value jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    PERFORM tistate._check_object(p_value, p_path, ARRAY['name', 'uri'], ARRAY['name', 'uri']);
    RETURN tistate._asset_index_size(jsonb_build_object(
        'name', tistate._asset_name(p_value -> 'name', p_path || '.name'),
        'uri', tistate._check_uri(tistate._text(p_value -> 'uri', p_path || '.uri', 1500, false), p_path || '.uri')), p_path);
END
$function$;

COMMENT ON FUNCTION tistate._asset_key(p_value jsonb, p_path text) IS 'Validate an asset key {name, uri}';
