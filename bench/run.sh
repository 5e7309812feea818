#!/usr/bin/env bash
# Reproduces docs/benchmarks.md: builds the release binaries, then runs every benchmark.
#
#   bash bench/run.sh                      # B1-B4 on SQLite, rewrites the SQLite block of docs/benchmarks.md
#   bash bench/run.sh --pg postgres://postgres@127.0.0.1:5432/postgres   # the same on PostgreSQL
#   bash bench/run.sh --quick              # B2 only (CI): non-zero exit when the statement count regresses
#   options: --duration S (10)  --warmup S (2)  --concurrency N (32)  --users N (2000)  --no-docs
set -euo pipefail
cd "$(dirname "$0")/.."

args=()
write_docs=(--write-docs docs/benchmarks.md)
for arg in "$@"; do
  case "$arg" in
    --no-docs) write_docs=() ;;
    --quick) write_docs=(); args+=("$arg") ;;
    *) args+=("$arg") ;;
  esac
done

cargo build --release -p mobile-bff -p mobile-bff-bench
BENCH_COMMAND="bash bench/run.sh${*:+ $*}" exec target/release/bench all "${args[@]}" "${write_docs[@]}"
