#!/usr/bin/env bash
# The test command: the whole suite on SQLite and on PostgreSQL, then the examples of the
# README and docs/ run as written (scripts/doctest.py, with the debug binary cargo test built).
# Uses TEST_DATABASE_URL when set (a server where the role may CREATE DATABASE), otherwise
# starts the local PostgreSQL cluster via scripts/postgres.sh. Installs what the acceptance
# tests run as real peers when missing: aiosmtpd and msgraph-sdk (PyPI), Prism, axe-core and
# oidc-provider (npm).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  TEST_DATABASE_URL=$(scripts/postgres.sh)
fi
export TEST_DATABASE_URL
# The outbox tests deliver to a real SMTP server process: aiosmtpd (PyPI).
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  python3 -m pip install --quiet aiosmtpd
fi
# The DKIM test verifies signed messages with an independent verifier: dkimpy (PyPI).
if ! python3 -c 'import dkim' 2>/dev/null; then
  python3 -m pip install --quiet dkimpy
fi
# Microsoft's Graph SDK for Python reads the Graph route as a real client (PyPI).
if ! python3 -c 'import msgraph' 2>/dev/null; then
  python3 -m pip install --quiet msgraph-sdk
fi
# The SMS tests validate every request against Twilio's API description with Prism (npm).
if ! command -v prism >/dev/null 2>&1; then
  npm install --global --silent --no-audit --no-fund @stoplight/prism-cli >&2
fi
# The browser tests run axe-core (npm) in headless Chromium (Debian's chromium and
# chromium-driver, which .ci/run installs); the staff sign-in tests run a real OpenID
# Connect provider, oidc-provider (npm), under Node. Both go into target/npm/ in one
# install: an install with --no-save removes what an earlier one put there.
AXE_JS=${AXE_JS:-$PWD/target/npm/node_modules/axe-core/axe.min.js}
OIDC_PROVIDER_DIR=${OIDC_PROVIDER_DIR:-$PWD/target/npm}
if [ ! -f "$AXE_JS" ] || [ ! -f "$OIDC_PROVIDER_DIR/node_modules/oidc-provider/package.json" ]; then
  npm install --prefix target/npm --silent --no-audit --no-fund --no-save axe-core@4 oidc-provider@9 >&2
fi
export AXE_JS OIDC_PROVIDER_DIR
export REQUIRE_POSTGRES=1 REQUIRE_PRISM=1 REQUIRE_MSGRAPH=1 REQUIRE_BROWSER=1 REQUIRE_OIDC=1
# Four tests at a time on any machine: most of a test's time is spent waiting (on a server,
# a browser, a child process), so two cores keep four busy; RUST_TEST_THREADS overrides.
export RUST_TEST_THREADS=${RUST_TEST_THREADS:-4}
cargo test --workspace --locked "$@"
# The contract fuzzer: schemathesis against /openapi.json of a running server, as an admin, a
# teacher and an app, on SQLite and on PostgreSQL (scripts/acceptance/schemathesis.sh).
# Skipped when cargo test got a filter, or with SCHEMATHESIS=0.
if [ "$#" -eq 0 ] && [ "${SCHEMATHESIS:-1}" != 0 ]; then
  PC_BIN=${PC_BIN:-target/debug/parent-connection} scripts/acceptance/schemathesis.sh
  PC_BIN=${PC_BIN:-target/debug/parent-connection} scripts/acceptance/schemathesis.sh --postgres "$TEST_DATABASE_URL"
fi
# The README's and docs' shell examples, run on a fresh database and checked; needs curl and jq.
# Skipped when cargo test got a filter (a targeted run), or with DOCTEST=0.
if [ "$#" -eq 0 ] && [ "${DOCTEST:-1}" != 0 ]; then
  PC_BIN=${PC_BIN:-target/debug/parent-connection} python3 scripts/doctest.py
fi
