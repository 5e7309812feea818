#!/usr/bin/env bash
# Run the playground browser test against a freshly started mobile-bff.
#
#   bash tests/browser/run.sh [path/to/mobile-bff]     (default: target/debug/mobile-bff)
#
# Starts `mobile-bff serve --seed --users 50` with the playground's dev login enabled
# (tests/support/serve.sh), then runs `npm test` here with BFF_URL set. Debian's Chromium is
# installed with apt if missing (browsers that download themselves do not work here).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../support/serve.sh"
BIN="$(resolve_bff_binary "${1:-}")"

export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
if [[ ! -x "$CHROMIUM" ]]; then
  if [[ "$CHROMIUM" == /usr/bin/chromium ]]; then
    echo "run.sh: installing chromium with apt" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
  else
    echo "run.sh: CHROMIUM=$CHROMIUM is not executable" >&2
    exit 1
  fi
fi

export BFF_PLAYGROUND__DEV_LOGIN=true
start_bff "$BIN" browser serve --seed --users 50

cd "$here"
if [[ ! -d node_modules/playwright-core ]]; then
  npm ci --no-audit --no-fund
fi
BFF_URL="$SERVER_URL" npm test
