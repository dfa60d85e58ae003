-- defined by migration 0003_helpers.sql
-- EXECUTE granted to: owner only
CREATE OR REPLACE FUNCTION tistate._with_rendered_map_index(p_result jsonb, p_payload jsonb)
 RETURNS jsonb
 LANGUAGE sql
 IMMUTABLE
AS $function$
    SELECT CASE WHEN p_payload ? 'rendered_map_index'
                THEN p_result || jsonb_build_object('rendered_map_index',
                         tistate._text(p_payload -> 'rendered_map_index', 'rendered_map_index', 250))
                ELSE p_result END;
$function$;

COMMENT ON FUNCTION tistate._with_rendered_map_index(p_result jsonb, p_payload jsonb) IS 'Add a validated rendered_map_index when the payload sent one';
