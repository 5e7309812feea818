#!/usr/bin/env bash
# Feature flags through OpenFeature's OFREP provider against a freshly started mobile-bff.
#
#   bash tests/flags/run.sh [path/to/mobile-bff]     (default: target/debug/mobile-bff)
#
# Stores four flags with the binary (`flags set`, `flags import`), starts `mobile-bff serve
# --seed --users 5` (flags refreshed every second), mints a token for alice and runs
# `npm test` here (flags.test.mjs).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../support/serve.sh"
BIN="$(resolve_bff_binary "${1:-}")"
export BFF_RATE_LIMITS__ENABLED=false BFF_VERSIONS__REFRESH_SECONDS=1
start_bff "$BIN" flags serve --seed --users 5

"$BIN" flags set checkout --rollout 50 --actor ci >/dev/null
"$BIN" flags set ios-only --platform ios --min-version 3.2 --actor ci >/dev/null
cat >"$TMP/theme.json" <<'JSON'
{"name": "theme", "enabled": true, "strategies": [], "variants": [
  {"name": "dark", "weight": 1, "stickiness": "default", "payload": {"type": "string", "value": "dark"}},
  {"name": "light", "weight": 1, "stickiness": "default", "payload": {"type": "string", "value": "light"}}]}
JSON
cat >"$TMP/limits.json" <<'JSON'
{"name": "limits", "enabled": true, "strategies": [], "variants": [
  {"name": "standard", "weight": 1, "payload": {"type": "json", "value": "{\"maxUploadMb\": 25}"}}]}
JSON
"$BIN" flags import "$TMP/theme.json" --actor ci >/dev/null
"$BIN" flags import "$TMP/limits.json" --actor ci >/dev/null

ALICE="$("$BIN" token --user alice 2>>"$TMP/server.log" | tail -n 1)"
ALICE_ID="$(python3 -c 'import base64,json,sys; p=sys.argv[1].split(".")[1]; p+="="*(-len(p)%4); print(json.loads(base64.urlsafe_b64decode(p))["sub"])' "$ALICE")"

cd "$here"
if [[ ! -d node_modules ]]; then
  npm ci --no-audit --no-fund
fi
# The server polls the database every second: wait until it serves the stored flags.
for _ in $(seq 1 50); do
  curl -fsS -X POST -H 'content-type: application/json' -d '{"context":{"targetingKey":"u"}}' \
    "$SERVER_URL/ofrep/v1/evaluate/flags/limits" >/dev/null 2>&1 && break
  sleep 0.2
done
FLAGS_TEST_URL="$SERVER_URL" FLAGS_TEST_BIN="$BIN" FLAGS_TEST_ALICE_TOKEN="$ALICE" FLAGS_TEST_ALICE_ID="$ALICE_ID" npm test
