#!/usr/bin/env bash
# OAuth2 + PKCE tests with Authlib against a fresh mobile-bff.
#   bash tests/oauth/run.sh [path/to/mobile-bff]     (default: target/debug/mobile-bff)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
BIN="${1:-target/debug/mobile-bff}"
case "$BIN" in /*) ;; *) BIN="$root/$BIN" ;; esac
[[ -x "$BIN" ]] || { echo "run.sh: no executable at $BIN (cargo build first)" >&2; exit 1; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/bff-oauth.XXXXXX")"
PORT="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')"
SERVER_PID=""
cleanup() {
  local rc=$?
  [[ -n "$SERVER_PID" ]] && kill "$SERVER_PID" 2>/dev/null || true
  if [[ $rc -ne 0 && -f "$TMP/server.log" ]]; then tail -n 40 "$TMP/server.log" >&2 || true; fi
  rm -rf "$TMP"
  exit $rc
}
trap cleanup EXIT INT TERM

VENV="${BFF_OAUTH_VENV:-$root/target/oauth-venv}"
if [[ ! -x "$VENV/bin/pytest" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$here/requirements.txt"
fi

cat > "$TMP/bff.toml" <<TOML
[auth]
argon2_memory_kib = 1024
argon2_iterations = 1

[[oauth_clients]]
client_id = "ios-app"
redirect_uris = ["com.example.app:/oauth"]
TOML

BFF_LISTEN="127.0.0.1:$PORT" BFF_DATA_DIR="$TMP" BFF_DATABASE_URL="sqlite://$TMP/bff.db?mode=rwc" BFF_LOG=warn \
  "$BIN" --config "$TMP/bff.toml" serve >"$TMP/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "server exited" >&2; exit 1; }
  sleep 0.5
done
BFF_URL="http://127.0.0.1:$PORT" "$VENV/bin/pytest" -q "$here/test_pkce.py"
