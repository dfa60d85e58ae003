-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._success_fields_problem(p_payload jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- The top-level fields of a TISuccessStatePayload up to task_outlets (its items are checked
    -- one by one by _asset_profile_problem); end_date's shape only (_timestamp casts it).
    SELECT CASE WHEN p_payload IS NULL OR jsonb_typeof(p_payload) <> 'object' THEN ': must be a JSON object' ELSE coalesce(
        CASE WHEN p_payload - ARRAY['state', 'end_date', 'task_outlets', 'outlet_events', 'rendered_map_index'] <> '{}'::jsonb
             THEN tistate._first_unknown_key(p_payload,
                      ARRAY['state', 'end_date', 'task_outlets', 'outlet_events', 'rendered_map_index']) || ': unknown field' END,
        CASE WHEN coalesce(jsonb_typeof(p_payload -> 'end_date'), 'null') = 'null' THEN 'end_date: field required' END,
        'end_date: ' || tistate._timestamp_problem(p_payload -> 'end_date'),
        CASE WHEN coalesce(jsonb_typeof(p_payload -> 'rendered_map_index'), 'null') NOT IN ('null', 'string')
             THEN 'rendered_map_index: must be a string'
             WHEN length(p_payload ->> 'rendered_map_index') > 250 THEN 'rendered_map_index: longer than 250 characters' END,
        CASE WHEN coalesce(jsonb_typeof(p_payload -> 'task_outlets'), 'null') NOT IN ('null', 'array')
             THEN 'task_outlets: must be a JSON array'
             -- Bounded work per call (a success with the most of both registers in about a second).
             WHEN jsonb_typeof(p_payload -> 'task_outlets') = 'array' AND jsonb_array_length(p_payload -> 'task_outlets') > 1000 THEN 'task_outlets: at most 1000 outlets' END) END
$function$;

COMMENT ON FUNCTION tistate._success_fields_problem(p_payload jsonb) IS 'What is wrong with the fields of a success payload up to task_outlets (not its items) as ''<field>: <message>'', NULL when valid';
