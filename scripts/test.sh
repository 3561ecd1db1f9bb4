#!/usr/bin/env bash
# The test command: the whole suite on SQLite and on PostgreSQL.
# Uses TEST_DATABASE_URL when set (a server where the role may CREATE DATABASE), otherwise
# starts the local PostgreSQL cluster via scripts/postgres.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  TEST_DATABASE_URL=$(scripts/postgres.sh)
fi
export TEST_DATABASE_URL
export REQUIRE_POSTGRES=1
cargo test --workspace --locked "$@"
