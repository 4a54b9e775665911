#!/bin/sh
# First start of the primary (docker-compose.yml): the role streaming replicas connect as and
# the pg_hba line that lets it. deploy/postgres/replica-entrypoint.sh clones the primary with it.
set -eu
psql -v ON_ERROR_STOP=1 -v password="$POSTGRES_REPLICATION_PASSWORD" \
    --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'password';
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
