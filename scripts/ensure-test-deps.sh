#!/usr/bin/env bash
# Runs before `npm test`: the suite starts a real PostgreSQL 15 server of its own and drives the
# dashboard in Debian's Chromium. Install them when they are missing, so `npm install && npm test`
# works on a fresh machine. Only the binaries are installed: no cluster is created or started.
set -euo pipefail

missing=()
if [ ! -x /usr/lib/postgresql/15/bin/postgres ] && [ -z "${CLERK_SYNC_PG_BIN:-}" ] && [ -z "${CLERK_SYNC_TEST_DATABASE_URL:-}" ]; then
  missing+=(postgresql-15)
fi
if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  missing+=(chromium)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo > /dev/null && sudo -n true 2> /dev/null; then SUDO="sudo"; else
    echo "clerk-sync tests need: ${missing[*]} (Debian packages). Install them, e.g.: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi
if ! command -v apt-get > /dev/null; then
  echo "clerk-sync tests need PostgreSQL 15 and Chromium; this is not a Debian system: install ${missing[*]} yourself" >&2
  exit 1
fi

echo "installing test dependencies: ${missing[*]}"
$SUDO mkdir -p /etc/postgresql-common
[ -f /etc/postgresql-common/createcluster.conf ] || echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.conf > /dev/null
$SUDO apt-get update -qq
for pkg in "${missing[@]}"; do
  if [ "$pkg" = postgresql-15 ]; then
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold postgresql-15 \
      || $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dpkg::Options::=--force-confold postgresql
  else
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg"
  fi
done
if [ ! -x /usr/lib/postgresql/15/bin/postgres ] && [ -z "${CLERK_SYNC_PG_BIN:-}" ]; then
  found=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -n 1)
  [ -n "$found" ] && echo "PostgreSQL 15 unavailable; the tests will use $found (set CLERK_SYNC_PG_BIN=$found)"
fi
