#!/bin/sh
# Writes Alertmanager's configuration (to $1, default /tmp/alertmanager.yml) from the environment:
# Alertmanager expands no variables itself, and the receivers' addresses are .env settings.
# Compose runs it before Alertmanager starts; `make ops` renders it with .env.example's values
# and checks the result with `amtool check-config`.
#
#   ALERT_WEBHOOK_URL           required: critical alerts (and warnings unless the next is set)
#   ALERT_WARNING_WEBHOOK_URL   optional: warnings to another channel
#   ALERT_EMAIL_TO              optional: critical alerts also by e-mail, through
#   ALERT_SMTP_SMARTHOST        host:port, ALERT_SMTP_FROM, ALERT_SMTP_USERNAME, ALERT_SMTP_PASSWORD
set -eu

out="${1:-/tmp/alertmanager.yml}"
: "${ALERT_WEBHOOK_URL:?set ALERT_WEBHOOK_URL in .env}"
warning_url="${ALERT_WARNING_WEBHOOK_URL:-$ALERT_WEBHOOK_URL}"

# YAML single-quoted scalars: a quote inside is doubled.
q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/''/g")"; }

{
  echo 'global:'
  echo '  resolve_timeout: 5m'
  if [ -n "${ALERT_EMAIL_TO:-}" ]; then
    : "${ALERT_SMTP_SMARTHOST:?set ALERT_SMTP_SMARTHOST in .env (ALERT_EMAIL_TO is set)}"
    : "${ALERT_SMTP_FROM:?set ALERT_SMTP_FROM in .env (ALERT_EMAIL_TO is set)}"
    echo "  smtp_smarthost: $(q "$ALERT_SMTP_SMARTHOST")"
    echo "  smtp_from: $(q "$ALERT_SMTP_FROM")"
    if [ -n "${ALERT_SMTP_USERNAME:-}" ]; then
      echo "  smtp_auth_username: $(q "$ALERT_SMTP_USERNAME")"
      echo "  smtp_auth_password: $(q "${ALERT_SMTP_PASSWORD:-}")"
    fi
  fi
  cat <<'YAML'

# critical pages at once and repeats hourly; warning waits for working hours and repeats twice a day.
route:
  receiver: warning
  group_by: [alertname, job]
  group_wait: 30s
  group_interval: 5m
  repeat_interval: 12h
  routes:
    - matchers: ['severity="critical"']
      receiver: critical
      group_wait: 10s
      group_interval: 1m
      repeat_interval: 1h

# A whole service down says more than each of its replicas or dependencies down.
inhibit_rules:
  - source_matchers: ['alertname="AtelierServiceDown"']
    target_matchers: ['alertname=~"AtelierInstanceDown|AtelierDependencyDown"']
    equal: [job]

receivers:
  - name: critical
    webhook_configs:
YAML
  echo "      - url: $(q "$ALERT_WEBHOOK_URL")"
  echo '        send_resolved: true'
  if [ -n "${ALERT_EMAIL_TO:-}" ]; then
    echo '    email_configs:'
    echo "      - to: $(q "$ALERT_EMAIL_TO")"
    echo '        send_resolved: true'
  fi
  echo '  - name: warning'
  echo '    webhook_configs:'
  echo "      - url: $(q "$warning_url")"
  echo '        send_resolved: true'
} > "$out"
