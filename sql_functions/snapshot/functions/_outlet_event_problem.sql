-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._outlet_event_problem(p_value jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- One item of outlet_events: an alias event (source_alias_name set) or a direct event. Each
    -- rule appears once (the inlined expression stays small: its set-up is paid on every call).
    SELECT CASE WHEN p_value IS NULL OR jsonb_typeof(p_value) <> 'object' THEN ': must be a JSON object' ELSE coalesce(
        CASE WHEN coalesce(jsonb_typeof(p_value -> 'source_alias_name'), 'null') <> 'null'
             THEN CASE WHEN p_value - ARRAY['source_alias_name', 'dest_asset_key', 'dest_asset_extra', 'extra'] <> '{}'::jsonb
                       THEN '.' || tistate._first_unknown_key(p_value,
                               ARRAY['source_alias_name', 'dest_asset_key', 'dest_asset_extra', 'extra']) || ': unknown field' END
             ELSE CASE WHEN p_value - ARRAY['dest_asset_key', 'extra', 'partition_key', 'source_alias_name'] <> '{}'::jsonb
                       THEN '.' || tistate._first_unknown_key(p_value,
                               ARRAY['dest_asset_key', 'extra', 'partition_key', 'source_alias_name']) || ': unknown field' END
        END,
        CASE WHEN coalesce(jsonb_typeof(p_value -> 'dest_asset_key'), 'null') = 'null'
             THEN '.dest_asset_key: field required' END,
        '.dest_asset_key' || tistate._asset_key_problem(p_value -> 'dest_asset_key'),
        '.source_alias_name: ' || tistate._name_problem(p_value -> 'source_alias_name'),
        '.dest_asset_extra: ' || tistate._object_problem(p_value -> 'dest_asset_extra'),
        '.extra: ' || tistate._object_problem(p_value -> 'extra'),
        '.partition_key: ' || tistate._partition_key_problem(p_value -> 'partition_key')) END
$function$;

COMMENT ON FUNCTION tistate._outlet_event_problem(p_value jsonb) IS 'What is wrong with one outlet_events item (an alias event or a direct event) as ''<sub-path>: <message>'', NULL when valid';
