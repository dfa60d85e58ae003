-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._asset_profile(p_value jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_type text;
    v_name text;
    v_uri  text;
BEGIN
    PERFORM tistate._check_object(p_value, p_path, ARRAY['type', 'name', 'uri'], ARRAY['type']);
    v_type := tistate._text(p_value -> 'type', p_path || '.type', 64, false);
    v_name := tistate._asset_name(p_value -> 'name', p_path || '.name', true);
    v_uri := tistate._check_uri(tistate._text(p_value -> 'uri', p_path || '.uri', 1500), p_path || '.uri');
    CASE v_type
        WHEN 'Asset' THEN
            IF v_name IS NULL OR v_uri IS NULL THEN
                PERFORM tistate._invalid(p_path, 'an Asset needs both name and uri');
            END IF;
        WHEN 'AssetNameRef', 'AssetAlias' THEN
            IF v_name IS NULL THEN
                PERFORM tistate._invalid(p_path || '.name', format('field required for %s', v_type));
            END IF;
            v_uri := NULL;
        WHEN 'AssetUriRef' THEN
            IF v_uri IS NULL THEN
                PERFORM tistate._invalid(p_path || '.uri', 'field required for AssetUriRef');
            END IF;
            v_name := NULL;
        ELSE
            PERFORM tistate._invalid(p_path || '.type', 'must be one of Asset, AssetNameRef, AssetUriRef, AssetAlias');
    END CASE;
    RETURN tistate._asset_index_size(jsonb_build_object('type', v_type, 'name', v_name, 'uri', v_uri), p_path);
END
$function$;

COMMENT ON FUNCTION tistate._asset_profile(p_value jsonb, p_path text) IS 'Validate and normalise an AssetProfile';
