-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._normalize_success(p_payload jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_outlets jsonb;
    v_events  jsonb;
    v_event   jsonb;
    v_path    text;
    v_i       integer;
    v_ok      boolean;
    v_result  jsonb;
BEGIN
    -- The result: state, end_date (normalised), rendered_map_index when sent, and task_outlets and
    -- outlet_events as sent ([] when absent or null), every field checked.
    -- Fast path: a payload that passes these checks is one the precise path below accepts, with the
    -- same result. Anything else (every invalid payload among them) goes the precise way, which finds
    -- the first bad field and raises its TS422. The end_date pattern is stricter than the precise
    -- one (calendar dates without 29 February, offsets up to 14 h), so the cast cannot fail here.
    IF jsonb_typeof(p_payload) = 'object'
       AND p_payload - ARRAY['state', 'end_date', 'task_outlets', 'outlet_events', 'rendered_map_index'] = '{}'::jsonb
       AND jsonb_typeof(p_payload -> 'end_date') = 'string'
       AND p_payload ->> 'end_date' ~ '^[1-9]\d{3}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)[T ](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?(?:Z|z|[+-](?:0\d|1[0-4])(?::?[0-5]\d)?)$'
       AND coalesce(jsonb_typeof(p_payload -> 'rendered_map_index'), 'null') IN ('null', 'string')
       AND coalesce(length(p_payload ->> 'rendered_map_index') <= 250, true)
       AND coalesce(jsonb_typeof(p_payload -> 'task_outlets'), 'null') IN ('null', 'array')
       AND coalesce(jsonb_typeof(p_payload -> 'outlet_events'), 'null') IN ('null', 'array')
       AND coalesce(jsonb_path_query_first(p_payload, '$.task_outlets.size()')::integer, 0) <= 1000
       AND coalesce(jsonb_path_query_first(p_payload, '$.outlet_events.size()')::integer, 0) <= 10000
    THEN
        SELECT coalesce(o.ok, true) AND coalesce(e.ok, true)
        INTO v_ok
        FROM (
            SELECT bool_and(coalesce(CASE WHEN jsonb_typeof(x.v) = 'object' THEN
                       x.v - ARRAY['type', 'name', 'uri'] = '{}'::jsonb
                       AND jsonb_typeof(x.v -> 'type') = 'string'
                       AND x.v ->> 'type' IN ('Asset', 'AssetNameRef', 'AssetUriRef', 'AssetAlias')
                       AND coalesce(jsonb_typeof(x.v -> 'name'), 'null') IN ('null', 'string')
                       AND coalesce(length(x.v ->> 'name') BETWEEN 1 AND 1500, true)
                       AND coalesce(octet_length(x.v ->> 'name'), 0) + coalesce(octet_length(x.v ->> 'uri'), 0) <= 2600
                       AND coalesce(jsonb_typeof(x.v -> 'uri'), 'null') IN ('null', 'string')
                       AND coalesce(length(x.v ->> 'uri') BETWEEN 1 AND 1500
                                    AND x.v ->> 'uri' ~ '^[\x01-\x7f]*$'
                                    AND lower(x.v ->> 'uri') !~ '^airflow://', true)
                       AND CASE x.v ->> 'type'
                               WHEN 'Asset' THEN x.v ->> 'name' IS NOT NULL AND x.v ->> 'uri' IS NOT NULL
                               WHEN 'AssetUriRef' THEN x.v ->> 'uri' IS NOT NULL
                               ELSE x.v ->> 'name' IS NOT NULL
                           END
                   END, false)) AS ok
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_payload -> 'task_outlets') = 'array'
                                           THEN p_payload -> 'task_outlets' ELSE '[]' END) AS x (v)
        ) AS o, (
            SELECT bool_and(coalesce(CASE
                       WHEN jsonb_typeof(x.v) <> 'object' OR jsonb_typeof(x.v -> 'dest_asset_key') <> 'object' THEN false
                       ELSE
                           (x.v -> 'dest_asset_key') - ARRAY['name', 'uri'] = '{}'::jsonb
                           AND jsonb_typeof(x.v -> 'dest_asset_key' -> 'name') = 'string'
                           AND length(x.v -> 'dest_asset_key' ->> 'name') BETWEEN 1 AND 1500
                           AND octet_length(x.v -> 'dest_asset_key' ->> 'name')
                               + octet_length(x.v -> 'dest_asset_key' ->> 'uri') <= 2600
                           AND jsonb_typeof(x.v -> 'dest_asset_key' -> 'uri') = 'string'
                           AND length(x.v -> 'dest_asset_key' ->> 'uri') BETWEEN 1 AND 1500
                           AND x.v -> 'dest_asset_key' ->> 'uri' ~ '^[\x01-\x7f]*$'
                           AND lower(x.v -> 'dest_asset_key' ->> 'uri') !~ '^airflow://'
                           AND coalesce(jsonb_typeof(x.v -> 'extra'), 'null') IN ('null', 'object')
                           AND CASE WHEN coalesce(jsonb_typeof(x.v -> 'source_alias_name'), 'null') <> 'null' THEN
                                   -- an alias event
                                   x.v - ARRAY['source_alias_name', 'dest_asset_key', 'dest_asset_extra', 'extra'] = '{}'::jsonb
                                   AND jsonb_typeof(x.v -> 'source_alias_name') = 'string'
                                   AND length(x.v ->> 'source_alias_name') BETWEEN 1 AND 1500
                                   AND octet_length(x.v ->> 'source_alias_name') <= 2600
                                   AND coalesce(jsonb_typeof(x.v -> 'dest_asset_extra'), 'null') IN ('null', 'object')
                               ELSE
                                   x.v - ARRAY['dest_asset_key', 'extra', 'partition_key', 'source_alias_name'] = '{}'::jsonb
                                   AND (coalesce(jsonb_typeof(x.v -> 'partition_key'), 'null') = 'null'
                                        OR (jsonb_typeof(x.v -> 'partition_key') = 'string'
                                            AND btrim(x.v ->> 'partition_key', E' \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f') <> ''
                                            AND length(x.v ->> 'partition_key') <= 250))
                               END
                   END, false)) AS ok
            FROM jsonb_array_elements(CASE WHEN jsonb_typeof(p_payload -> 'outlet_events') = 'array'
                                           THEN p_payload -> 'outlet_events' ELSE '[]' END) AS x (v)
        ) AS e;
        IF v_ok THEN
            v_result := jsonb_build_object('state', 'success', 'end_date', (p_payload ->> 'end_date')::timestamptz);
            IF p_payload ? 'rendered_map_index' THEN
                v_result := v_result || jsonb_build_object('rendered_map_index', p_payload ->> 'rendered_map_index');
            END IF;
            RETURN v_result || jsonb_build_object(
                'task_outlets', CASE WHEN jsonb_typeof(p_payload -> 'task_outlets') = 'array' THEN p_payload -> 'task_outlets' ELSE '[]' END,
                'outlet_events', CASE WHEN jsonb_typeof(p_payload -> 'outlet_events') = 'array' THEN p_payload -> 'outlet_events' ELSE '[]' END);
        END IF;
    END IF;

    -- Precise path: field by field, in payload order; the first bad field raises TS422 naming it.
    PERFORM tistate._check_object(p_payload, '',
        ARRAY['state', 'end_date', 'task_outlets', 'outlet_events', 'rendered_map_index'], ARRAY['end_date']);
    v_result := jsonb_build_object('state', 'success',
                                   'end_date', tistate._timestamp(p_payload -> 'end_date', 'end_date'));
    IF p_payload ? 'rendered_map_index' THEN
        v_result := v_result || jsonb_build_object('rendered_map_index',
            tistate._text(p_payload -> 'rendered_map_index', 'rendered_map_index', 250));
    END IF;
    v_outlets := tistate._array(p_payload -> 'task_outlets', 'task_outlets');
    -- Bounded work per call (a success with the most of both registers in about a second).
    IF jsonb_array_length(v_outlets) > 1000 THEN
        PERFORM tistate._invalid('task_outlets', 'at most 1000 outlets');
    END IF;
    FOR v_i IN 0 .. jsonb_array_length(v_outlets) - 1 LOOP
        PERFORM tistate._asset_profile(v_outlets -> v_i, format('task_outlets[%s]', v_i));
    END LOOP;
    v_events := tistate._array(p_payload -> 'outlet_events', 'outlet_events');
    IF jsonb_array_length(v_events) > 10000 THEN
        PERFORM tistate._invalid('outlet_events', 'at most 10000 events');
    END IF;
    FOR v_i IN 0 .. jsonb_array_length(v_events) - 1 LOOP
        v_path := format('outlet_events[%s]', v_i);
        v_event := v_events -> v_i;
        IF jsonb_typeof(v_event) = 'object' AND jsonb_typeof(v_event -> 'source_alias_name') IS DISTINCT FROM 'null'
           AND v_event ? 'source_alias_name' THEN
            PERFORM tistate._check_object(v_event, v_path,
                ARRAY['source_alias_name', 'dest_asset_key', 'dest_asset_extra', 'extra'],
                ARRAY['source_alias_name', 'dest_asset_key']);
            PERFORM tistate._asset_key(v_event -> 'dest_asset_key', v_path || '.dest_asset_key');
            PERFORM tistate._asset_name(v_event -> 'source_alias_name', v_path || '.source_alias_name');
            PERFORM tistate._json_object(v_event -> 'dest_asset_extra', v_path || '.dest_asset_extra');
            PERFORM tistate._json_object(v_event -> 'extra', v_path || '.extra');
        ELSE
            PERFORM tistate._check_object(v_event, v_path, ARRAY['dest_asset_key', 'extra', 'partition_key', 'source_alias_name'],
                                          ARRAY['dest_asset_key']);
            PERFORM tistate._asset_key(v_event -> 'dest_asset_key', v_path || '.dest_asset_key');
            PERFORM tistate._json_object(v_event -> 'extra', v_path || '.extra');
            PERFORM tistate._partition_key(v_event -> 'partition_key', v_path || '.partition_key');
        END IF;
    END LOOP;
    RETURN v_result || jsonb_build_object('task_outlets', v_outlets, 'outlet_events', v_events);
END
$function$;

COMMENT ON FUNCTION tistate._normalize_success(p_payload jsonb) IS 'Validate (TS422) and normalise a TISuccessStatePayload';
