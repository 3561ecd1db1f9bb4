#!/usr/bin/env bash
# Checks every SMS request the dispatcher sends against Twilio's own API description of the
# Messages resource: Prism (npm @stoplight/prism-cli) serves
# tests/fixtures/twilio/messages.openapi.json with request validation on, and the
# integration tests in tests/it/sms_prism.rs send real invitations to it (a number sender, a
# Messaging Service SID, and a control request Prism must refuse), on SQLite and, when
# TEST_DATABASE_URL is set, on PostgreSQL. Run from a source checkout.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! command -v prism >/dev/null 2>&1; then
  npm install --global --silent --no-audit --no-fund @stoplight/prism-cli >&2
fi
REQUIRE_PRISM=1 cargo test --locked --test it sms_prism
