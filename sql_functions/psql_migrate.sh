#!/bin/sh
# Apply tistate's migrations with psql alone, exactly as `tistate db migrate` does: each pending file
# in its own transaction, under the same advisory lock, recorded with its sha256 in
# tistate.schema_migrations. Connection settings come from the libpq environment (PGHOST,
# PGDATABASE, ...) or a connection URI as the first argument.
#   sh sql_functions/psql_migrate.sh postgresql://user@host/db
set -eu
dir=$(dirname "$0")/migrations
if [ $# -gt 0 ]; then set -- -d "$1"; fi  # "$@" is now the psql connection option, if any
for f in "$dir"/[0-9][0-9][0-9][0-9]_*.sql; do
    base=$(basename "$f" .sql)
    version=$(echo "${base%%_*}" | sed 's/^0*//')
    name=${base#*_}
    sum=$(sha256sum "$f" | cut -d' ' -f1)
    applied=$(psql "$@" -X -q -t -A -c "SELECT 1 FROM tistate.schema_migrations WHERE version = $version" 2>/dev/null || true)
    [ "$applied" = "1" ] && continue
    echo "applying $base"
    psql "$@" -X -q -v ON_ERROR_STOP=1 --single-transaction \
        -c "SELECT pg_advisory_xact_lock(7454871387525470)" \
        -c "SET LOCAL lock_timeout = '5s'" \
        -f "$f" \
        -c "INSERT INTO tistate.schema_migrations (version, name, checksum) VALUES ($version, '$name', '$sum')"
done
