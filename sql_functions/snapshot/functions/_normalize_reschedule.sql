-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._normalize_reschedule(p_payload jsonb)
 RETURNS jsonb
 LANGUAGE plpgsql
 STABLE
AS $function$
BEGIN
    -- TIRescheduleStatePayload.
    PERFORM tistate._check_object(p_payload, '', ARRAY['state', 'reschedule_date', 'end_date'],
                                  ARRAY['reschedule_date', 'end_date']);
    RETURN jsonb_build_object(
        'state', 'up_for_reschedule',
        'reschedule_date', tistate._timestamp(p_payload -> 'reschedule_date', 'reschedule_date'),
        'end_date', tistate._timestamp(p_payload -> 'end_date', 'end_date'));
END
$function$;

COMMENT ON FUNCTION tistate._normalize_reschedule(p_payload jsonb) IS 'Validate (TS422) and normalise a TIRescheduleStatePayload';
