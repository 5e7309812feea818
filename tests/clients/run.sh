#!/usr/bin/env bash
# Run the third-party client checks against a freshly started mobile-bff.
#
#   bash tests/clients/run.sh [path/to/mobile-bff]     (default: target/debug/mobile-bff)
#
# Builds nothing. Starts `mobile-bff serve --seed --users 50` on a free loopback port with a
# throwaway data dir, waits (bounded, 60 s) for /readyz, mints a token for alice, then runs
# `npm test` here with BFF_URL and BFF_TOKEN set:
#   schema.test.mjs        graphql-js accepts schema.graphql and the screen queries (no server)
#   graphql-http.test.mjs  graphql-http's GraphQL-over-HTTP server audits (MUSTs must pass)
#   apollo.test.mjs        Apollo Client v4: APQ over GET + ETag/304 warm open
# The server is always stopped on exit; on failure the tail of its log is printed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

BIN="${1:-target/debug/mobile-bff}"
case "$BIN" in /*) ;; *) BIN="$root/$BIN" ;; esac
if [[ ! -x "$BIN" ]]; then
  echo "run.sh: no executable at $BIN (build it first: cargo build -p mobile-bff)" >&2
  exit 1
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/bff-clients.XXXXXX")"
PORT="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')"
SERVER_PID=""

cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -f "$TMP/server.log" ]]; then
    echo "--- last lines of the server log ($TMP/server.log) ---" >&2
    tail -n 40 "$TMP/server.log" >&2 || true
  fi
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT INT TERM

export BFF_DATA_DIR="$TMP"
export BFF_DATABASE_URL="sqlite://$TMP/bff.db?mode=rwc"
export BFF_LOG="${BFF_LOG:-warn}"

echo "run.sh: starting $BIN on 127.0.0.1:$PORT (data dir $TMP)"
BFF_LISTEN="127.0.0.1:$PORT" "$BIN" serve --seed --users 50 >"$TMP/server.log" 2>&1 &
SERVER_PID=$!

# Wait (bounded) for readiness; give up early if the server died.
ready=""
for _ in $(seq 1 120); do
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    echo "run.sh: server exited before becoming ready" >&2
    exit 1
  fi
  if curl -fsS --max-time 2 "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.5
done
if [[ -z "$ready" ]]; then
  echo "run.sh: server not ready after 60 s" >&2
  exit 1
fi
echo "run.sh: server ready"

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
BFF_URL="http://127.0.0.1:$PORT" BFF_TOKEN="$TOKEN" npm test
