-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._asset_key_problem(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- An asset's key {name, uri}, both required.
    SELECT CASE WHEN p_value IS NULL OR jsonb_typeof(p_value) <> 'object' THEN ': must be a JSON object' ELSE coalesce(
        CASE WHEN p_value - ARRAY['name', 'uri'] <> '{}'::jsonb
             THEN '.' || tistate._first_unknown_key(p_value, ARRAY['name', 'uri']) || ': unknown field' END,
        CASE WHEN coalesce(jsonb_typeof(p_value -> 'name'), 'null') = 'null' THEN '.name: field required'
             WHEN coalesce(jsonb_typeof(p_value -> 'uri'), 'null') = 'null' THEN '.uri: field required' END,
        '.name: ' || tistate._name_problem(p_value -> 'name'),
        '.uri: ' || tistate._uri_problem(p_value -> 'uri'),
        CASE WHEN octet_length(p_value ->> 'name') + octet_length(p_value ->> 'uri') > 2600
             THEN '.name: name and uri together longer than 2600 bytes' END) END
$function$;

COMMENT ON FUNCTION tistate._asset_key_problem(p_value jsonb) IS 'What is wrong with an asset key {name, uri} as ''<sub-path>: <message>'', NULL when valid';
