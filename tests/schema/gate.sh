#!/usr/bin/env bash
# The schema gate (CI runs it; run it before a release):
#   1. breaking changes: graphql-inspector diff of OLD (default schema.released.graphql, the
#      last released schema) against NEW (default schema.graphql). A removal is allowed only
#      when OLD deprecated it with a sunset date that has passed (sunset-rule.cjs).
#   2. every supported app version's persisted operations (manifests/*.json, any of the
#      formats `mobile-bff documents import` takes) must validate against NEW.
#
#   bash tests/schema/gate.sh [OLD NEW MANIFEST_DIR]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
old="${1:-$root/schema.released.graphql}"
new="${2:-$root/schema.graphql}"
manifests="${3:-$root/manifests}"
cd "$here"
[[ -d node_modules ]] || npm ci --no-audit --no-fund
npx --no-install graphql-inspector diff "$old" "$new" --rule "$here/sunset-rule.cjs"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
node "$here/extract-operations.mjs" "$manifests" "$work"
if compgen -G "$work/*.graphql" >/dev/null; then
  npx --no-install graphql-inspector validate "$work/*.graphql" "$new"
else
  echo "no persisted operations in $manifests"
fi
