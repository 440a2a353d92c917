#!/bin/sh
# Entrypoint of the Atelier image, run under tini (PID 1 forwards SIGTERM, reaps children).
# With arguments, runs them (e.g. `atelier-admin keys create --account ID`); without, starts
# the process SERVICE names. `exec` so node itself receives SIGTERM and drains gracefully.
set -eu

if [ "$#" -gt 0 ]; then
  exec "$@"
fi

case "${SERVICE:-}" in
  gateway)
    exec node /app/gateway/dist/main.js
    ;;
  billing | imager | trainer | inferencer)
    # A process's runtime environment (the imager's allocator settings): each NAME=value of its
    # file is exported unless the container's environment sets NAME already.
    env_file="/app/services/${SERVICE}/malloc.env"
    if [ -f "$env_file" ]; then
      while IFS= read -r line; do
        case "$line" in
          [A-Za-z_]*=*)
            name="${line%%=*}"
            case "$name" in *[!A-Za-z0-9_]*) continue ;; esac
            eval "[ -n \"\${${name}+set}\" ]" || export "$line"
            ;;
        esac
      done <"$env_file"
    fi
    exec node "/app/services/${SERVICE}/dist/main.js"
    ;;
  *)
    echo "atelier: set SERVICE to one of gateway, billing, imager, trainer, inferencer (got '${SERVICE:-}')" >&2
    exit 64
    ;;
esac
