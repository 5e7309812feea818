#!/usr/bin/env bash
# Real-time checks with third-party clients against a freshly started mobile-bff.
#
#   bash tests/realtime/run.sh [path/to/mobile-bff]     (default: target/debug/mobile-bff)
#
# Starts `mobile-bff serve --seed --users 20` (tests/support/serve.sh), mints tokens for alice
# and bob, then runs `npm test` here (graphql-ws, graphql-sse and long-poll; see
# realtime.test.mjs) with BFF_URL, BFF_TOKEN_ALICE and BFF_TOKEN_BOB set.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../support/serve.sh"
BIN="$(resolve_bff_binary "${1:-}")"
# Each test sends a few hundred messages as one user: the mutation rate limit has its own tests.
export BFF_RATE_LIMITS__ENABLED=false
start_bff "$BIN" realtime serve --seed --users 20

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

cd "$here"
if [[ ! -d node_modules ]]; then
  npm ci --no-audit --no-fund
fi
BFF_URL="$SERVER_URL" BFF_TOKEN_ALICE="$ALICE" BFF_TOKEN_BOB="$BOB" npm test
