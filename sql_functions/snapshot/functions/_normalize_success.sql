-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._normalize_success(p_payload jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_outlets jsonb := '[]';
    v_events  jsonb := '[]';
    v_event   jsonb;
    v_path    text;
    v_key     jsonb;
    v_i       integer;
    v_result  jsonb;
BEGIN
    PERFORM tistate._check_object(p_payload, '',
        ARRAY['state', 'end_date', 'task_outlets', 'outlet_events', 'rendered_map_index'], ARRAY['end_date']);
    v_result := jsonb_build_object('state', 'success',
                                   'end_date', tistate._timestamp(p_payload -> 'end_date', 'end_date'));
    IF p_payload ? 'rendered_map_index' THEN
        v_result := v_result || jsonb_build_object('rendered_map_index',
            tistate._text(p_payload -> 'rendered_map_index', 'rendered_map_index', 250));
    END IF;
    FOR v_i IN 0 .. jsonb_array_length(tistate._array(p_payload -> 'task_outlets', 'task_outlets')) - 1 LOOP
        v_outlets := v_outlets || tistate._asset_profile(p_payload -> 'task_outlets' -> v_i, format('task_outlets[%s]', v_i));
    END LOOP;
    FOR v_i IN 0 .. jsonb_array_length(tistate._array(p_payload -> 'outlet_events', 'outlet_events')) - 1 LOOP
        v_path := format('outlet_events[%s]', v_i);
        v_event := p_payload -> 'outlet_events' -> v_i;
        IF jsonb_typeof(v_event) = 'object' AND jsonb_typeof(v_event -> 'source_alias_name') IS DISTINCT FROM 'null'
           AND v_event ? 'source_alias_name' THEN
            PERFORM tistate._check_object(v_event, v_path,
                ARRAY['source_alias_name', 'dest_asset_key', 'dest_asset_extra', 'extra'],
                ARRAY['source_alias_name', 'dest_asset_key']);
            v_key := tistate._asset_key(v_event -> 'dest_asset_key', v_path || '.dest_asset_key');
            v_events := v_events || jsonb_build_object(
                'alias', tistate._asset_name(v_event -> 'source_alias_name', v_path || '.source_alias_name'),
                'name', v_key -> 'name', 'uri', v_key -> 'uri',
                'asset_extra', tistate._json_object(v_event -> 'dest_asset_extra', v_path || '.dest_asset_extra'),
                'extra', tistate._json_object(v_event -> 'extra', v_path || '.extra'),
                'partition_key', NULL);
        ELSE
            PERFORM tistate._check_object(v_event, v_path, ARRAY['dest_asset_key', 'extra', 'partition_key', 'source_alias_name'],
                                          ARRAY['dest_asset_key']);
            v_key := tistate._asset_key(v_event -> 'dest_asset_key', v_path || '.dest_asset_key');
            v_events := v_events || jsonb_build_object(
                'alias', NULL,
                'name', v_key -> 'name', 'uri', v_key -> 'uri',
                'asset_extra', '{}'::jsonb,
                'extra', tistate._json_object(v_event -> 'extra', v_path || '.extra'),
                'partition_key', tistate._partition_key(v_event -> 'partition_key', v_path || '.partition_key'));
        END IF;
    END LOOP;
    RETURN v_result || jsonb_build_object('task_outlets', v_outlets, 'outlet_events', v_events);
END
$function$;

COMMENT ON FUNCTION tistate._normalize_success(p_payload jsonb) IS 'Validate (TS422) and normalise a TISuccessStatePayload';
