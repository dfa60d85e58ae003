-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._asset_index_size(p_asset jsonb, p_path text)
 RETURNS jsonb
 LANGUAGE plpgsql
 IMMUTABLE
AS $function$
BEGIN
    -- (name, uri) is unique-indexed together: both must fit one btree entry (about 2700 bytes).
    IF coalesce(octet_length(p_asset ->> 'name') + octet_length(p_asset ->> 'uri'), 0) > 2600 THEN
        PERFORM tistate._invalid(p_path || '.name', 'name and uri together longer than 2600 bytes');
    END IF;
    RETURN p_asset;
END
$function$;

COMMENT ON FUNCTION tistate._asset_index_size(p_asset jsonb, p_path text) IS 'TS422 when an asset''s name and uri together exceed what one index entry holds (2600 bytes)';
