#!/usr/bin/env bash
# Instructions per HomeFeed request (callgrind counts instructions, not time: repeatable on a
# busy machine). Used for the "profile and fix" figures in docs/benchmarks.md.
#
#   bash bench/profile.sh [BINARY...]     # default: target/release/mobile-bff
#
# For each binary: seeds a fresh 2000-user SQLite dataset (once), runs the server under
# callgrind with 1 request and with 21 requests, and prints (Ir(21) - Ir(1)) / 20. The
# callgrind files stay in the temp dir printed at the start (inspect with callgrind_annotate).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=(target/release/mobile-bff)
work=$(mktemp -d /tmp/bff-profile-XXXXXX)
echo "profile data in $work"
export BFF_DATA_DIR="$work/data" BFF_DATABASE_URL="sqlite://$work/data/bench.db?mode=rwc" BFF_LOG=warn
export BFF_RATE_LIMITS__ENABLED=false
"${bins[0]}" seed --users 2000 >/dev/null 2>&1
python3 - "$work/body.json" <<'PY'
import json, sys
query = open("playground/queries/HomeFeed.graphql").read()
open(sys.argv[1], "w").write(json.dumps({"query": query, "variables": {"first": 20}}))
PY
port=18391
run() { # binary requests out
  local bin=$1 n=$2 out=$3 token pid
  token=$("$bin" token --user alice --ttl 1800 2>/dev/null | tail -1)
  BFF_LISTEN=127.0.0.1:$port valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" serve >"$out.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 240); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.5; done
  for _ in $(seq 1 "$n"); do
    curl -sf -o /dev/null -X POST "http://127.0.0.1:$port/graphql" -H 'content-type: application/json' \
      -H "authorization: Bearer $token" --data-binary @"$work/body.json"
  done
  kill -TERM "$pid"; wait "$pid" || true
  awk '/^summary:/ { print $2 }' "$out"
}
for bin in "${bins[@]}"; do
  name=$(basename "$bin")
  one=$(run "$bin" 1 "$work/$name.1.out")
  many=$(run "$bin" 21 "$work/$name.21.out")
  echo "$bin: $(( (many - one) / 20 )) instructions per HomeFeed request (first: 20)"
done
