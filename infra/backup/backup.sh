#!/bin/sh
# One backup of the database: pg_dump (custom format) into BACKUP_DIR as
# atelier-<UTC time>.dump, checked readable before it is kept; dumps older than
# BACKUP_RETENTION_DAYS are removed; on success atelier_backup_last_success_timestamp_seconds is
# written for node-exporter's textfile collector (BACKUP_TEXTFILE_DIR), which the
# AtelierBackupTooOld alert watches. Connects with the libpq variables (PGHOST, PGUSER,
# PGPASSWORD, PGDATABASE). compose's `backup` service runs it every BACKUP_INTERVAL_S;
# docs/operations.md, "Backups", has the restore (restore.sh).
set -eu
dir="${BACKUP_DIR:?set BACKUP_DIR}"
days="${BACKUP_RETENTION_DAYS:-14}"
case "$days" in '' | *[!0-9]* | 0)
  echo "BACKUP_RETENTION_DAYS must be a whole number of days, at least 1 (got '$days')" >&2
  exit 64
  ;;
esac
mkdir -p "$dir"
stamp="$(date -u +%Y%m%dT%H%M%SZ)"
partial="$dir/.atelier-$stamp.dump.partial"
trap 'rm -f "$partial"' EXIT
pg_dump --format=custom --file="$partial"
# A dump that pg_restore cannot list is not a backup.
pg_restore --list "$partial" >/dev/null
mv "$partial" "$dir/atelier-$stamp.dump"
find "$dir" -maxdepth 1 -name 'atelier-*.dump' -mmin "+$((days * 1440))" -exec rm -f {} +
echo "backup $dir/atelier-$stamp.dump written; kept $(find "$dir" -maxdepth 1 -name 'atelier-*.dump' | wc -l) dump(s)"
if [ -n "${BACKUP_TEXTFILE_DIR:-}" ]; then
  metrics="$BACKUP_TEXTFILE_DIR/atelier_backup.prom"
  size="$(wc -c <"$dir/atelier-$stamp.dump")"
  cat >"$metrics.$$" <<PROM
# HELP atelier_backup_last_success_timestamp_seconds When the last good database dump finished (Unix time).
# TYPE atelier_backup_last_success_timestamp_seconds gauge
atelier_backup_last_success_timestamp_seconds $(date -u +%s)
# HELP atelier_backup_last_size_bytes Size of the last good database dump.
# TYPE atelier_backup_last_size_bytes gauge
atelier_backup_last_size_bytes $size
PROM
  mv "$metrics.$$" "$metrics"
fi
