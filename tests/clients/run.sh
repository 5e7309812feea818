#!/usr/bin/env bash
# Run the third-party client checks against a freshly started mobile-bff.
#
#   bash tests/clients/run.sh [path/to/mobile-bff]     (default: target/debug/mobile-bff)
#
# Builds nothing. Starts `mobile-bff serve --seed --users 50` (tests/support/serve.sh), mints a
# token for alice, then runs `npm test` here with BFF_URL and BFF_TOKEN set:
#   schema.test.mjs        graphql-js accepts schema.graphql and the screen queries (no server)
#   graphql-http.test.mjs  graphql-http's GraphQL-over-HTTP server audits (MUSTs must pass)
#   apollo.test.mjs        Apollo Client v4: APQ over GET + ETag/304 warm open
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../support/serve.sh"
BIN="$(resolve_bff_binary "${1:-}")"
start_bff "$BIN" clients serve --seed --users 50

# The JWT alone is the last line of stdout.
TOKEN="$("$BIN" token --user alice 2>>"$TMP/server.log" | tail -n 1)"
if [[ -z "$TOKEN" ]]; then
  echo "run.sh: \`mobile-bff token --user alice\` printed no token" >&2
  exit 1
fi

cd "$here"
if [[ ! -d node_modules ]]; then
  npm ci --no-audit --no-fund
fi
BFF_URL="$SERVER_URL" BFF_TOKEN="$TOKEN" npm test
