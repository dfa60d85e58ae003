-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._asset_profile(p_value jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    PERFORM tistate._raise_problem(p_path, tistate._asset_profile_problem(p_value));
    -- Normalised: a reference keeps only what identifies it.
    RETURN jsonb_build_object('type', p_value ->> 'type',
                              'name', CASE WHEN p_value ->> 'type' <> 'AssetUriRef' THEN p_value ->> 'name' END,
                              'uri', CASE WHEN p_value ->> 'type' IN ('Asset', 'AssetUriRef') THEN p_value ->> 'uri' END);
END
$function$;

COMMENT ON FUNCTION tistate._asset_profile(p_value jsonb, p_path text) IS 'Validate and normalise an AssetProfile';
