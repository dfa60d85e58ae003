#!/bin/sh
# Apply tistate's migrations with psql alone, exactly as `tistate db migrate` does: each pending file
# in its own transaction, under the same advisory lock, with the same flavor settings, recorded with
# its sha256 in tistate.schema_migrations. A file marked `-- tistate:flavor=standalone` on its first
# line is recorded without running in the airflow flavor. Connection settings come from the libpq
# environment (PGHOST, PGDATABASE, ...) or a connection URI as the last argument. Prints one line
# per file it applies, nothing else.
#   sh sql_functions/psql_migrate.sh [--airflow] [--airflow-schema SCHEMA] [postgresql://user@host/db]
set -eu
dir=$(dirname "$0")/migrations
flavor=standalone
schema=public
while [ $# -gt 0 ]; do
    case "$1" in
        --airflow) flavor=airflow; shift ;;
        --airflow-schema) flavor=airflow; schema=$2; shift 2 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
if [ $# -gt 0 ]; then set -- -d "$1"; fi  # "$@" is now the psql connection option, if any
q() { psql "$@" -X -q -t -A -v ON_ERROR_STOP=1; }
# An installed database keeps the flavor it was installed with.
installed=$(q "$@" -c "SELECT flavor FROM tistate.installation" 2>/dev/null || true)
if [ -n "$installed" ] && [ "$installed" != "$flavor" ] && [ "$flavor" = airflow ]; then
    echo "this database has tistate installed as $installed, not airflow" >&2; exit 1
fi
[ -n "$installed" ] && flavor=$installed
for f in "$dir"/[0-9][0-9][0-9][0-9]_*.sql; do
    base=$(basename "$f" .sql)
    version=$(echo "${base%%_*}" | sed 's/^0*//')
    name=${base#*_}
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    applied=$(q "$@" -c "SELECT 1 FROM tistate.schema_migrations WHERE version = $version" 2>/dev/null || true)
    [ "$applied" = "1" ] && continue
    only=$(sed -n '1s/^-- tistate:flavor=\([a-z]*\).*/\1/p' "$f")
    body=$f
    [ -n "$only" ] && [ "$only" != "$flavor" ] && body=/dev/null
    echo "applying $base"
    psql "$@" -X -q -v ON_ERROR_STOP=1 --single-transaction \
        -c "SELECT pg_advisory_xact_lock(7454871387525470)" \
        -c "SET LOCAL lock_timeout = '5s'" \
        -c "SELECT set_config('tistate.flavor', '$flavor', true), set_config('tistate.airflow_schema', '$schema', true)" \
        -f "$body" \
        -c "INSERT INTO tistate.schema_migrations (version, name, checksum) VALUES ($version, '$name', '$sum')" \
        >/dev/null
done
