-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._uuid7(p_now timestamp with time zone DEFAULT clock_timestamp())
 RETURNS uuid
 LANGUAGE sql
AS $function$
    -- RFC 9562 version 7: 48-bit unix milliseconds, then random bits; version and variant fixed up.
    SELECT encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM p_now) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid;
$function$;

COMMENT ON FUNCTION tistate._uuid7(p_now timestamp with time zone) IS 'A time-ordered uuid version 7 (PostgreSQL 15 has no uuidv7())';
