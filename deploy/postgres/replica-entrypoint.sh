#!/bin/sh
# A streaming replica (docker-compose.yml, profile scale). On its first start it clones the
# primary with pg_basebackup (--write-recovery-conf: standby.signal and primary_conninfo, so it
# follows the primary's WAL), then runs postgres as the image does; later starts just run.
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    chown postgres "$PGDATA"
    chmod 700 "$PGDATA"
    until gosu postgres pg_basebackup --host=postgres --username=replicator \
            --pgdata="$PGDATA" --write-recovery-conf --wal-method=stream --checkpoint=fast; do
        echo "replica: waiting for the primary"
        sleep 2
    done
fi
exec docker-entrypoint.sh postgres
