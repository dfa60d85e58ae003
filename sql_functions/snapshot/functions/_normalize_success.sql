-- defined by migration 0010_payload_rules.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._normalize_success(p_payload jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_outlets jsonb := CASE WHEN jsonb_typeof(p_payload -> 'task_outlets') = 'array' THEN p_payload -> 'task_outlets' ELSE '[]' END;
    v_events  jsonb := CASE WHEN jsonb_typeof(p_payload -> 'outlet_events') = 'array' THEN p_payload -> 'outlet_events' ELSE '[]' END;
    v_result  jsonb;
BEGIN
    -- The first bad field in payload order raises TS422 naming it: one statement over the fields
    -- and every outlet and event (the rules are inlined into it).
    PERFORM tistate._raise_problem('', coalesce(
        tistate._success_fields_problem(p_payload),
        (SELECT format('task_outlets[%s]', y.i - 1) || y.problem
         FROM (SELECT x.i, tistate._asset_profile_problem(x.v) AS problem
               FROM jsonb_array_elements(v_outlets) WITH ORDINALITY AS x (v, i) OFFSET 0) AS y
         WHERE y.problem IS NOT NULL
         ORDER BY y.i LIMIT 1),
        CASE WHEN coalesce(jsonb_typeof(p_payload -> 'outlet_events'), 'null') NOT IN ('null', 'array')
             THEN 'outlet_events: must be a JSON array'
             WHEN jsonb_array_length(v_events) > 10000 THEN 'outlet_events: at most 10000 events' END,
        (SELECT format('outlet_events[%s]', y.i - 1) || y.problem
         FROM (SELECT x.i, tistate._outlet_event_problem(x.v) AS problem
               FROM jsonb_array_elements(v_events) WITH ORDINALITY AS x (v, i) OFFSET 0) AS y
         WHERE y.problem IS NOT NULL
         ORDER BY y.i LIMIT 1)));
    -- The result: state, end_date (normalised; a date that does not exist, such as 30 February, is
    -- the one problem left, found by the cast), rendered_map_index when sent, and task_outlets and
    -- outlet_events as sent ([] when absent or null).
    v_result := jsonb_build_object('state', 'success',
                                   'end_date', tistate._timestamp(p_payload -> 'end_date', 'end_date'));
    IF p_payload ? 'rendered_map_index' THEN
        v_result := v_result || jsonb_build_object('rendered_map_index', p_payload ->> 'rendered_map_index');
    END IF;
    RETURN v_result || jsonb_build_object('task_outlets', v_outlets, 'outlet_events', v_events);
END
$function$;

COMMENT ON FUNCTION tistate._normalize_success(p_payload jsonb) IS 'Validate (TS422) and normalise a TISuccessStatePayload';
