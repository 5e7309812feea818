#!/usr/bin/env bash
# Instructions per request (callgrind counts instructions, not time: repeatable on a busy
# machine). Used for the "profile and fix" figures in docs/benchmarks.md.
#
#   bash bench/profile.sh [--workload homefeed|typename] [BINARY...]   # default: homefeed,
#                                                                       # target/release/mobile-bff
#
# Workloads: `homefeed` is B1's request (HomeFeed, `first: 20`, as @alice); `typename` is B3's
# (`{ __typename }`, anonymous). For each binary: seeds a fresh 2000-user SQLite dataset
# (once), runs the server under callgrind with 1 request and with 21 requests, and prints
# (Ir(21) - Ir(1)) / 20. As in the harness, the requests share one keep-alive connection and
# the query rate limit runs with a budget it never exhausts. The callgrind files stay in the
# temp dir printed at the start (inspect with `callgrind_annotate --inclusive=yes`).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind; }
workload=homefeed
bins=()
while [ $# -gt 0 ]; do
  case "$1" in
    --workload) workload=$2; shift 2 ;;
    *) bins+=("$1"); shift ;;
  esac
done
case "$workload" in homefeed | typename) ;; *) echo "unknown workload: $workload" >&2; exit 2 ;; esac
[ ${#bins[@]} -gt 0 ] || bins=(target/release/mobile-bff)
work=$(mktemp -d /tmp/bff-profile-XXXXXX)
echo "profile data in $work"
export BFF_DATA_DIR="$work/data" BFF_DATABASE_URL="sqlite://$work/data/bench.db?mode=rwc" BFF_LOG=warn
export BFF_RATE_LIMITS__QUERY_CLIENT__PER_MINUTE=1000000000 BFF_RATE_LIMITS__QUERY_CLIENT__BURST=1000000000
"${bins[0]}" seed --users 2000 >/dev/null 2>&1
python3 - "$work/body.json" "$workload" <<'PY'
import json, sys
if sys.argv[2] == "typename":
    body = {"query": "{ __typename }"}
else:
    body = {"query": open("playground/queries/HomeFeed.graphql").read(), "variables": {"first": 20}}
open(sys.argv[1], "w").write(json.dumps(body))
PY
port=18391
# Count only HTTP connections (hyper, middleware, handlers, GraphQL execution, row decoding)
# and, for homefeed, SQLite's statement execution on sqlx's worker threads. Start-up work
# outside them varies from run to run (quanta calibrates its clock against wall time), which
# at tens of millions of instructions would drown a request of ~100k. `{ __typename }` runs
# no SQL: counting statements there would only add the pool's own (timing-dependent)
# connection opening.
collect=(--toggle-collect='axum::serve::handle_connection*')
[ "$workload" = homefeed ] &&
  collect+=(--toggle-collect='<sqlx_sqlite::connection::execute::ExecuteIter as core::iter::traits::iterator::Iterator>::next')
# One start and stop without valgrind first: seeding leaves a large write-ahead log that the
# first server to open the database reads and checkpoints (millions of instructions), which
# would otherwise land in whichever measured run comes first.
BFF_LISTEN=127.0.0.1:$port "${bins[0]}" serve >"$work/warmup.log" 2>&1 &
warm=$!
for _ in $(seq 1 240); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.25; done
kill -TERM "$warm"; wait "$warm" || true
run() { # binary requests out
  local bin=$1 n=$2 out=$3 pid i auth=() args=()
  if [ "$workload" = homefeed ]; then
    auth=(-H "authorization: Bearer $("$bin" token --user alice --ttl 1800 2>/dev/null | tail -1)")
  fi
  BFF_LISTEN=127.0.0.1:$port valgrind --tool=callgrind "${collect[@]}" --callgrind-out-file="$out" "$bin" serve >"$out.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 240); do curl -sf -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.5; done
  # One curl for all requests: they reuse one keep-alive connection, like the load generator.
  for i in $(seq 1 "$n"); do
    [ "$i" -gt 1 ] && args+=(--next)
    args+=(-sf -o /dev/null -X POST "http://127.0.0.1:$port/graphql" -H 'content-type: application/json'
      "${auth[@]}" --data-binary @"$work/body.json")
  done
  curl "${args[@]}"
  kill -TERM "$pid"; wait "$pid" || true
  # Minus opening SQLite connections: the pool opens one in the background or inside the
  # first request that needs it, whichever comes first, so it may or may not be counted.
  local total opening
  total=$(awk '/^summary:/ { print $2 }' "$out")
  opening=$(callgrind_annotate --inclusive=yes --threshold=100 "$out" 2>/dev/null |
    awk '/sqlx_sqlite::connection::establish::EstablishParams::establish / { gsub(",", "", $1); n += $1 } END { print n + 0 }')
  echo $((total - opening))
}
for i in "${!bins[@]}"; do
  bin=${bins[$i]} name=$i-$(basename "$bin")
  one=$(run "$bin" 1 "$work/$name.1.out")
  many=$(run "$bin" 21 "$work/$name.21.out")
  echo "$bin: $(( (many - one) / 20 )) instructions per $workload request"
done
