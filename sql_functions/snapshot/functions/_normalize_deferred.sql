-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._normalize_deferred(p_payload jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
DECLARE
    v_kwargs text;
BEGIN
    -- TIDeferredStatePayload. trigger_kwargs is stored as the text the client sent when it sent a
    -- string (Airflow stores it as received), else as the JSON text of the object.
    PERFORM tistate._check_object(p_payload, '',
        ARRAY['state', 'classpath', 'next_method', 'trigger_kwargs', 'trigger_timeout', 'queue', 'next_kwargs',
              'rendered_map_index'],
        ARRAY['classpath', 'next_method']);
    IF jsonb_typeof(p_payload -> 'trigger_kwargs') = 'string' THEN
        v_kwargs := p_payload ->> 'trigger_kwargs';
    ELSE
        v_kwargs := tistate._json_object(p_payload -> 'trigger_kwargs', 'trigger_kwargs')::text;
    END IF;
    -- rendered_map_index is validated but not stored, as in Airflow.
    PERFORM tistate._text(p_payload -> 'rendered_map_index', 'rendered_map_index', 250);
    RETURN jsonb_build_object(
        'state', 'deferred',
        'classpath', tistate._text(p_payload -> 'classpath', 'classpath', 1000, false),
        'next_method', tistate._text(p_payload -> 'next_method', 'next_method', 1000, false),
        'trigger_kwargs', v_kwargs,
        'trigger_timeout_seconds', tistate._delay_seconds(p_payload -> 'trigger_timeout', 'trigger_timeout'),
        'queue', tistate._text(p_payload -> 'queue', 'queue', 256),
        'next_kwargs', tistate._json_object(p_payload -> 'next_kwargs', 'next_kwargs'));
END
$function$;

COMMENT ON FUNCTION tistate._normalize_deferred(p_payload jsonb) IS 'Validate (TS422) and normalise a TIDeferredStatePayload';
