#!/usr/bin/env bash
# Makes sure a local PostgreSQL (Debian package `postgresql`) is running with a login role
# for the tests, and prints its URL. Idempotent. Needs root or sudo for the postgres user.
set -euo pipefail

ROLE=${PC_TEST_ROLE:-parent_connection}
PASSWORD=${PC_TEST_PASSWORD:-parent_connection}
PORT=${PC_TEST_PORT:-5432}

as_postgres() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi
}

if ! command -v pg_lsclusters >/dev/null 2>&1; then
  echo "PostgreSQL is not installed: apt-get install postgresql" >&2
  exit 1
fi
if [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  if [ "$(id -u)" = 0 ]; then pg_createcluster "$version" main >&2; else sudo pg_createcluster "$version" main >&2; fi
fi
read -r version cluster _ < <(pg_lsclusters -h | head -n 1)
if ! pg_lsclusters -h | head -n 1 | grep -q online; then
  if [ "$(id -u)" = 0 ]; then pg_ctlcluster "$version" "$cluster" start >&2; else sudo pg_ctlcluster "$version" "$cluster" start >&2; fi
fi
for _ in $(seq 1 30); do
  as_postgres pg_isready -q -p "$PORT" && break
  sleep 1
done
as_postgres psql -q -p "$PORT" -v ON_ERROR_STOP=1 >&2 <<SQL
DO \$\$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD';
  END IF;
END
\$\$;
SQL
echo "postgres://$ROLE:$PASSWORD@127.0.0.1:$PORT/postgres"
