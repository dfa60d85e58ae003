-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._asset_profile_problem(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- Airflow's AssetProfile as a task outlet: {type, name, uri}, checked in field order. Each rule
    -- is one coalesce argument, evaluated only while the ones before it found nothing.
    SELECT CASE WHEN p_value IS NULL OR jsonb_typeof(p_value) <> 'object' THEN ': must be a JSON object' ELSE coalesce(
        CASE WHEN p_value - ARRAY['type', 'name', 'uri'] <> '{}'::jsonb
             THEN '.' || tistate._first_unknown_key(p_value, ARRAY['type', 'name', 'uri']) || ': unknown field' END,
        CASE WHEN coalesce(jsonb_typeof(p_value -> 'type'), 'null') = 'null' THEN '.type: field required'
             WHEN jsonb_typeof(p_value -> 'type') <> 'string' THEN '.type: must be a string' END,
        '.name: ' || tistate._name_problem(p_value -> 'name'),
        '.uri: ' || tistate._uri_problem(p_value -> 'uri'),
        CASE p_value ->> 'type'
            WHEN 'Asset' THEN
                CASE WHEN p_value ->> 'name' IS NULL OR p_value ->> 'uri' IS NULL THEN ': an Asset needs both name and uri'
                     -- (name, uri) is unique-indexed together: both must fit one btree entry.
                     WHEN octet_length(p_value ->> 'name') + octet_length(p_value ->> 'uri') > 2600
                     THEN '.name: name and uri together longer than 2600 bytes' END
            WHEN 'AssetUriRef' THEN
                CASE WHEN p_value ->> 'uri' IS NULL THEN '.uri: field required for AssetUriRef' END
            WHEN 'AssetNameRef' THEN
                CASE WHEN p_value ->> 'name' IS NULL THEN '.name: field required for AssetNameRef' END
            WHEN 'AssetAlias' THEN
                CASE WHEN p_value ->> 'name' IS NULL THEN '.name: field required for AssetAlias' END
            ELSE '.type: must be one of Asset, AssetNameRef, AssetUriRef, AssetAlias'
        END) END
$function$;

COMMENT ON FUNCTION tistate._asset_profile_problem(p_value jsonb) IS 'What is wrong with a task outlet (AssetProfile: Asset, AssetNameRef, AssetUriRef or AssetAlias) as ''<sub-path>: <message>'', NULL when valid';
