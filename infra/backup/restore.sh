#!/bin/sh
# Restores a dump of backup.sh into PGDATABASE (libpq variables: PGHOST, PGUSER, PGPASSWORD,
# PGDATABASE), as the owner. Without --clean the database must hold no Atelier schema yet (a
# fresh one: `createdb atelier_restore`); with --clean what is there is replaced. One
# transaction: a failed restore changes nothing. The per-service roles the dump grants to are
# cluster-wide and not in a dump: they are created first where missing (as V50 does).
# Stop the services (and the backup service) before restoring over the live database.
set -eu
clean=
if [ "${1:-}" = --clean ]; then
  clean=1
  shift
fi
file="${1:?usage: restore.sh [--clean] <atelier-….dump>}"
pg_restore --list "$file" >/dev/null
if [ -z "$clean" ]; then
  existing="$(psql -X -tAc "SELECT count(*) FROM pg_namespace WHERE nspname IN ('billing', 'trainer', 'inferencer')")"
  if [ "$existing" != 0 ]; then
    echo "$PGDATABASE already holds Atelier schemas: restore into a fresh database, or pass --clean to replace them" >&2
    exit 65
  fi
fi
psql -X -v ON_ERROR_STOP=1 -q <<'SQL'
DO $$
DECLARE
  role text;
BEGIN
  FOREACH role IN ARRAY ARRAY['atelier_billing', 'atelier_trainer', 'atelier_inferencer'] LOOP
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = role) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', role);
    END IF;
  END LOOP;
END $$;
SQL
# shellcheck disable=SC2086 # the clean flags are two words or none
pg_restore --exit-on-error --single-transaction --no-owner ${clean:+--clean --if-exists} --dbname="$PGDATABASE" "$file"
echo "restored $file into $PGDATABASE"
