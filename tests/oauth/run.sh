#!/usr/bin/env bash
# OAuth2 + PKCE tests with Authlib (PyPI) against a fresh mobile-bff with a registered client
# `ios-app` redirecting to `com.example.app:/oauth`.
#   bash tests/oauth/run.sh [path/to/mobile-bff]     (default: target/debug/mobile-bff)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
source "$here/../support/serve.sh"
BIN="$(resolve_bff_binary "${1:-}")"

VENV="${BFF_OAUTH_VENV:-$root/target/oauth-venv}"
if [[ ! -x "$VENV/bin/pytest" ]]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q -r "$here/requirements.txt"
fi

config="$(mktemp "${TMPDIR:-/tmp}/bff-oauth-config.XXXXXX.toml")"
cat > "$config" <<TOML
[auth]
argon2_memory_kib = 1024
argon2_iterations = 1

[[oauth_clients]]
client_id = "ios-app"
redirect_uris = ["com.example.app:/oauth"]
TOML
start_bff "$BIN" oauth --config "$config" serve
rm -f "$config"
BFF_URL="$SERVER_URL" "$VENV/bin/pytest" -q "$here/test_pkce.py"
