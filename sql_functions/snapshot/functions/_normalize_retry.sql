-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._normalize_retry(p_payload jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    -- TIRetryStatePayload. retry_reason is truncated to the column's 500 characters, as Airflow does.
    PERFORM tistate._check_object(p_payload, '',
        ARRAY['state', 'end_date', 'rendered_map_index', 'retry_delay_seconds', 'retry_reason'], ARRAY['end_date']);
    RETURN tistate._with_rendered_map_index(
        jsonb_build_object(
            'state', 'up_for_retry',
            'end_date', tistate._timestamp(p_payload -> 'end_date', 'end_date'),
            'retry_delay_seconds', tistate._delay_seconds(
                to_jsonb(tistate._number(p_payload -> 'retry_delay_seconds', 'retry_delay_seconds')), 'retry_delay_seconds'),
            'retry_reason', left(tistate._text(p_payload -> 'retry_reason', 'retry_reason', 1000000), 500)),
        p_payload);
END
$function$;

COMMENT ON FUNCTION tistate._normalize_retry(p_payload jsonb) IS 'Validate (TS422) and normalise a TIRetryStatePayload';
