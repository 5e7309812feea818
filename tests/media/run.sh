#!/usr/bin/env bash
# tus-js-client and curl against a freshly started mobile-bff (docs/media.md).
#
#   bash tests/media/run.sh [path/to/mobile-bff]     (default: target/debug/mobile-bff)
#
# Builds nothing. Starts `mobile-bff serve --seed --users 20` (tests/support/serve.sh) with a
# 2 MB image limit, mints tokens for alice and bob, then runs `npm test` here (media.test.mjs):
# a JPEG stored sideways with EXIF Orientation=6 and GPS tags (fixtures/rotated-gps.jpg, made by
# tests/integration/media/fixtures.rs) uploaded in chunks with checksums, a resume after an
# interrupted upload, 409 / 460 / 413 answers, a post made from the upload, its WebP variant
# (upright, no metadata) and Range requests with curl.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
source "$here/../support/serve.sh"
BIN="$(resolve_bff_binary "${1:-}")"
export BFF_MEDIA__MAX_IMAGE_BYTES=2000000
start_bff "$BIN" media serve --seed --users 20

ALICE="$("$BIN" token --user alice 2>>"$TMP/server.log" | tail -n 1)"
BOB="$("$BIN" token --user bob 2>>"$TMP/server.log" | tail -n 1)"
if [[ -z "$ALICE" || -z "$BOB" ]]; then
  echo "run.sh: \`mobile-bff token\` printed no token" >&2
  exit 1
fi

cd "$here"
if [[ ! -d node_modules ]]; then
  npm ci --no-audit --no-fund
fi
BFF_URL="$SERVER_URL" BFF_TOKEN="$ALICE" BFF_OTHER_TOKEN="$BOB" npm test
