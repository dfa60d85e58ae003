-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._asset_name(p_value jsonb, p_path text, p_nullable boolean DEFAULT false)
 RETURNS text
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
DECLARE
    v_name text := tistate._text(p_value, p_path, 1500, p_nullable);
BEGIN
    IF v_name = '' THEN
        PERFORM tistate._invalid(p_path, 'must not be empty');
    END IF;
    -- Names are unique-indexed: a btree entry holds at most about 2700 bytes (PostgreSQL's index
    -- row limit, SQLSTATE 54000), which 1500 characters of multi-byte text can exceed.
    IF octet_length(v_name) > 2600 THEN
        PERFORM tistate._invalid(p_path, 'longer than 2600 bytes');
    END IF;
    RETURN v_name;
END
$function$;

COMMENT ON FUNCTION tistate._asset_name(p_value jsonb, p_path text, p_nullable boolean) IS 'A non-empty asset or alias name of at most 1500 characters';
