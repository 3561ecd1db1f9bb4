#!/usr/bin/env bash
# Contract fuzzing of the HTTP API with schemathesis (PyPI) against its own /openapi.json:
# starts the service on a fresh SQLite database in a temporary folder (or uses BASE_URL and
# the tokens ADMIN_TOKEN, TEACHER_TOKEN, APP_TOKEN when given), loads the example district,
# and runs `schemathesis run` with every check (schemathesis.toml) once per kind of caller (admin, teacher, app)
# with a fixed seed and a bounded number of examples. Exits non-zero on any failure.
#
#   scripts/acceptance/schemathesis.sh            # SQLite; uses target/debug or PC_BIN
#   scripts/acceptance/schemathesis.sh --postgres postgres://USER:PASS@HOST:5432/postgres
#                                                 # a fresh database on that server (the role
#                                                 # may CREATE DATABASE), dropped at the end
#   ST_EXAMPLES=50 ST_SEED=7 scripts/acceptance/schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
# Pinned: schemathesis.toml uses this version's configuration keys.
ST_VERSION=4.32.5
schemathesis --version 2>/dev/null | grep -q "$ST_VERSION" ||
  python3 -m pip install --quiet "schemathesis==$ST_VERSION"
EXAMPLES=${ST_EXAMPLES:-25}
SEED=${ST_SEED:-20261202}
POSTGRES=""
if [ "${1:-}" = "--postgres" ]; then
  POSTGRES=${2:?--postgres needs the server URL}
fi
work=$(mktemp -d)
server_pid=""
pg_db=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null; wait "$server_pid" 2>/dev/null || true; fi
  if [ -n "$pg_db" ]; then psql -q "$POSTGRES" -c "DROP DATABASE IF EXISTS $pg_db" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${BASE_URL:-}" ]; then
  bin=${PC_BIN:-target/debug/parent-connection}
  [ -x "$bin" ] || cargo build --locked --quiet
  if [ -n "$POSTGRES" ]; then
    pg_db="schemathesis_$$"
    psql -q "$POSTGRES" -c "CREATE DATABASE $pg_db" >/dev/null
    base=${POSTGRES%%\?*}
    export DATABASE_URL="${base%/*}/$pg_db${POSTGRES#"$base"}"
    # PostgreSQL deployments configure the key of stored OneRoster secrets (SQLite makes one).
    PARENT_CONNECTION__ONEROSTER__SECRET_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
    export PARENT_CONNECTION__ONEROSTER__SECRET_KEY
    # ... and the key of the keyed hashes of erased personal data (docs/privacy.md).
    PARENT_CONNECTION__PRIVACY__HASH_KEY=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
    export PARENT_CONNECTION__PRIVACY__HASH_KEY
  else
    export DATABASE_URL="sqlite://$work/pc.db?mode=rwc"
  fi
  export MAIL_URL="file://$work/mail"
  # Development tokens, signed with a secret made for this run.
  export PARENT_CONNECTION__AUTH__DEVELOPMENT=true
  JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(32))')
  export JWT_SECRET
  # Rate limits raised for the fuzzer: it sends thousands of requests from one address.
  export PARENT_CONNECTION__API__CLIENT_REQUESTS_PER_SECOND=100000
  export PARENT_CONNECTION__API__CLIENT_BURST=100000
  export PARENT_CONNECTION__API__TOKEN_REQUESTS_PER_SECOND=100000
  export PARENT_CONNECTION__API__TOKEN_BURST=100000
  export PARENT_CONNECTION__OUTBOX__DISPATCH_IN_SERVE=false
  # A OneRoster run with the connection the fuzzer stored fails upstream (a made-up host);
  # without retries it fails at once instead of after ≈ 15 s of backoff per request (the
  # retries have their own tests).
  export PARENT_CONNECTION__ONEROSTER__MAX_RETRIES=0
  export PARENT_CONNECTION__DIGEST__SCHEDULE_IN_SERVE=false
  export RUST_LOG=warn
  "$bin" tenant create nyc --name "NYC Public Schools" >/dev/null
  "$bin" import --tenant nyc --format sds-v2.1 tests/fixtures/sds-v21/basic >/dev/null
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin" serve --bind "127.0.0.1:$port" >"$work/serve.log" 2>&1 &
  server_pid=$!
  BASE_URL="http://127.0.0.1:$port"
  for _ in $(seq 1 100); do curl -sf "$BASE_URL/healthz" >/dev/null && break; sleep 0.1; done
  ADMIN_TOKEN=$("$bin" token --tenant nyc --user admin-1 --role global-admin --role tenant-admin)
  TEACHER_TOKEN=$("$bin" token --tenant nyc --user tch-1 --role teacher)
  APP_TOKEN=$("$bin" token --tenant nyc --app --scope EduRoster.Read.All --scope EduAssignments.ReadWrite.All)
fi

# The engine by name only: the server URL holds a password.
engine=SQLite
[ -n "$POSTGRES" ] && engine=PostgreSQL
status=0
passed=0
failed=0
for who in ADMIN TEACHER APP; do
  token_var="${who}_TOKEN"
  echo "== schemathesis as ${who,,} on $engine (seed $SEED, $EXAMPLES examples per operation)"
  if ! schemathesis --config-file scripts/acceptance/schemathesis.toml run "$BASE_URL/openapi.json" \
      --seed "$SEED" --max-examples "$EXAMPLES" --workers 1 \
      --generation-database none --no-color --request-timeout 30 \
      -H "Authorization: Bearer ${!token_var}" \
      ${ST_EXTRA:-}; then
    status=1
    failed=$((failed + 1))
  else
    passed=$((passed + 1))
  fi
done
if [ -n "$server_pid" ] && ! kill -0 "$server_pid" 2>/dev/null; then
  server_pid=""
  echo "the service stopped during the run:" >&2; cat "$work/serve.log" >&2; status=1
fi
echo "schemathesis: $passed passed, $failed failed"
exit $status
