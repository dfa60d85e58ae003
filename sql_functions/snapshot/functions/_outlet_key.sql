-- defined by migration 0005_state_transitions.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._outlet_key(p_outlet jsonb)
 RETURNS text
 LANGUAGE sql
 IMMUTABLE
AS $function$
    -- What identifies an outlet of each type: an asset by name and uri, an alias or a name
    -- reference by name, a uri reference by uri (names and uris never contain NUL).
    SELECT (p_outlet ->> 'type') || E'\n' || CASE p_outlet ->> 'type'
               WHEN 'Asset' THEN coalesce(p_outlet ->> 'name', '') || E'\n' || coalesce(p_outlet ->> 'uri', '')
               WHEN 'AssetUriRef' THEN coalesce(p_outlet ->> 'uri', '')
               ELSE coalesce(p_outlet ->> 'name', '') END
$function$;

COMMENT ON FUNCTION tistate._outlet_key(p_outlet jsonb) IS 'The identity of an outlet for the declared-outlet check: type with name and uri (Asset), name (AssetAlias, AssetNameRef) or uri (AssetUriRef)';
