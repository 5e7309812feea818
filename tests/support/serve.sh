# Shared by the tests that need a live mobile-bff (tests/browser, tests/clients, tests/oauth).
# Source it, then call:   start_bff <binary> <label> [serve args...]
# It starts `<binary> serve ...` on a free loopback port with a throwaway data dir (SQLite),
# waits (bounded, 60 s) for /readyz, sets SERVER_URL and exports BFF_DATA_DIR, BFF_DATABASE_URL,
# TMP, PORT and SERVER_PID. (SERVER_URL is not a BFF_* variable: the binary would reject an
# unknown setting such as BFF_URL.) The server is always stopped on exit; on failure the tail of its log is
# printed. Extra BFF_* settings can be exported before calling it.

resolve_bff_binary() {
  local root bin
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
  bin="${1:-target/debug/mobile-bff}"
  case "$bin" in /*) ;; *) bin="$root/$bin" ;; esac
  if [[ ! -x "$bin" ]]; then
    echo "no executable at $bin (build it first: cargo build -p mobile-bff)" >&2
    return 1
  fi
  printf '%s\n' "$bin"
}

_bff_cleanup() {
  local rc=$?
  if [[ -n "${SERVER_PID:-}" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ $rc -ne 0 && -f "${TMP:-}/server.log" ]]; then
    echo "--- last lines of the server log ($TMP/server.log) ---" >&2
    tail -n 40 "$TMP/server.log" >&2 || true
  fi
  [[ -n "${TMP:-}" ]] && rm -rf "$TMP"
  exit $rc
}

start_bff() {
  local bin="$1" label="$2"
  shift 2
  TMP="$(mktemp -d "${TMPDIR:-/tmp}/bff-$label.XXXXXX")"
  PORT="$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')"
  SERVER_PID=""
  trap _bff_cleanup EXIT INT TERM
  export TMP PORT BFF_DATA_DIR="$TMP" BFF_DATABASE_URL="sqlite://$TMP/bff.db?mode=rwc" BFF_LOG="${BFF_LOG:-warn}"
  echo "$label: starting $bin on 127.0.0.1:$PORT (data dir $TMP)"
  BFF_LISTEN="127.0.0.1:$PORT" "$bin" "$@" >"$TMP/server.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 120); do
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "$label: server exited before becoming ready" >&2
      return 1
    fi
    if curl -fsS --max-time 2 "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1; then
      SERVER_URL="http://127.0.0.1:$PORT"
      echo "$label: server ready"
      return 0
    fi
    sleep 0.5
  done
  echo "$label: server not ready after 60 s" >&2
  return 1
}
