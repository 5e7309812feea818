#!/usr/bin/env bash
# Refresh the vendored GraphiQL / React UMD builds in playground/vendor/.
#
# The playground page must work with no network access (no CDNs), so the
# four browser files are committed and embedded into the Rust binary.
# Run this script (needs node + npm and the npm registry) to re-fetch them,
# then update the versions in playground/vendor/README.md.
#
#   bash playground/vendor.sh
#
# GraphiQL 3 is the last major that ships a UMD build (graphiql.min.js) and
# it needs React 18, so the majors below are pinned on purpose.
set -euo pipefail

GRAPHIQL_VERSION="${GRAPHIQL_VERSION:-3.9.0}"
REACT_VERSION="${REACT_VERSION:-18.3.1}"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dest="$here/vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
npm init -y >/dev/null
npm install --no-audit --no-fund --ignore-scripts --save-exact \
  "graphiql@$GRAPHIQL_VERSION" "react@$REACT_VERSION" "react-dom@$REACT_VERSION" >/dev/null

mkdir -p "$dest"
cp node_modules/react/umd/react.production.min.js         "$dest/"
cp node_modules/react-dom/umd/react-dom.production.min.js "$dest/"
cp node_modules/graphiql/graphiql.min.js                  "$dest/"
cp node_modules/graphiql/graphiql.min.css                 "$dest/"

for p in graphiql react react-dom; do
  node -p "const p=require('./node_modules/$p/package.json'); p.name+'@'+p.version+' ('+p.license+')'"
done
ls -l "$dest"
