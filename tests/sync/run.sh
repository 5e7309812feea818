#!/usr/bin/env bash
# Offline-first sync with a real offline database: RxDB (memory storage) and its GraphQL
# replication plugin against a freshly started mobile-bff, then the kill -9 mid-push check.
#
#   bash tests/sync/run.sh [path/to/mobile-bff]     (default: target/debug/mobile-bff)
#
# Starts `mobile-bff serve --seed --users 5` (tests/support/serve.sh), mints tokens for alice,
# bob and carol, and runs sync.test.mjs with BFF_URL and BFF_TOKEN_* set; then runs
# crash.test.mjs, which starts and kills its own server (CRASH_TEST_BINARY).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../support/serve.sh"
BIN="$(resolve_bff_binary "${1:-}")"
export BFF_RATE_LIMITS__ENABLED=false
start_bff "$BIN" sync serve --seed --users 5

token() {
  local t
  t="$("$BIN" token --user "$1" 2>>"$TMP/server.log" | tail -n 1)"
  if [[ -z "$t" ]]; then
    echo "run.sh: \`mobile-bff token --user $1\` printed no token" >&2
    exit 1
  fi
  printf '%s\n' "$t"
}
ALICE="$(token alice)"
BOB="$(token bob)"
CAROL="$(token carol)"

cd "$here"
if [[ ! -d node_modules ]]; then
  npm ci --no-audit --no-fund
fi
BFF_URL="$SERVER_URL" BFF_TOKEN_ALICE="$ALICE" BFF_TOKEN_BOB="$BOB" BFF_TOKEN_CAROL="$CAROL" \
  node --test --test-concurrency=1 --test-reporter=spec sync.test.mjs
if [[ -f crash.test.mjs ]]; then
  CRASH_TEST_BINARY="$BIN" node --test --test-concurrency=1 --test-reporter=spec crash.test.mjs
fi
