#!/usr/bin/env bash
# Reproduces docs/benchmarks.md: builds the release binaries, then runs every benchmark.
#
#   bash bench/run.sh                      # B1-B4 on SQLite, rewrites the SQLite block of docs/benchmarks.md
#   bash bench/run.sh --pg postgres://postgres@127.0.0.1:5432/postgres   # the same on PostgreSQL
#   bash bench/run.sh --quick              # B2 only (CI): non-zero exit when the statement count regresses
#   options: --duration S (10)  --warmup S (2)  --concurrency N (32)  --users N (2000)  --no-docs
#
#   bash bench/run.sh --network            # mobile-network simulation only (root: namespaces, tc, nftables;
#                                          # installs nftables/iproute2 with apt if missing), ~7 min,
#                                          # rewrites the network block of docs/benchmarks.md
#   network options: --repetitions N (9)  --users N (2000)  --no-docs
set -euo pipefail
cd "$(dirname "$0")/.."

args=()
mode=all
write_docs=(--write-docs docs/benchmarks.md)
for arg in "$@"; do
  case "$arg" in
    --no-docs) write_docs=() ;;
    --quick) write_docs=(); args+=("$arg") ;;
    --network) mode=network ;;
    *) args+=("$arg") ;;
  esac
done

if [[ $mode == network ]]; then
  if [[ $(id -u) != 0 ]]; then
    echo "bench/run.sh --network needs root (network namespaces, tc, nftables)" >&2
    exit 1
  fi
  if ! command -v nft >/dev/null || ! command -v tc >/dev/null || ! command -v ip >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables iproute2 >/dev/null
  fi
fi

cargo build --release -p mobile-bff -p mobile-bff-bench
BENCH_COMMAND="bash bench/run.sh${*:+ $*}" exec target/release/bench "$mode" "${args[@]}" "${write_docs[@]}"
