#!/usr/bin/env bash
# Checks the canonical API against its OpenAPI document, over real HTTP (called by
# scripts/test.sh after the Rust tests, which build the example server binary):
#
# 1. starts the example server on a throwaway SQLite file (rate limits off, so that the fuzzer
#    reaches the flows) and fetches GET /api/auth/openapi.json;
# 2. validates the document with openapi-spec-validator (PyPI);
# 3. fuzzes the server with schemathesis (PyPI) against the document: once anonymously, once as
#    an admin (the routes that end the caller's own session excluded, so the token lives), with
#    its checks for server errors, undocumented status codes, content types and response
#    schemas. Any failure fails the script. Bounded: a fixed number of cases per operation.
#
# Usage: scripts/api-check.sh [path of the auth-example-server binary]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-${CARGO_TARGET_DIR:-target}/debug/auth-example-server}
examples=${AUTH_API_CHECK_EXAMPLES:-25}

if [ ! -x "$bin" ]; then
    echo "scripts/api-check.sh: $bin is not built (cargo build -p auth-example-server)" >&2
    exit 1
fi
for tool in openapi-spec-validator schemathesis; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "scripts/api-check.sh: installing $tool (PyPI)" >&2
        python3 -m pip install -q --disable-pip-version-check "$tool" >/dev/null
    fi
done

work=$(mktemp -d -t auth-api-check.XXXXXX)
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
export AUTH_DATABASE_URL="sqlite://$work/auth.db" AUTH_BIND="127.0.0.1:$port" AUTH_RATE_LIMITS=off
export AUTH_JWT_SECRET="api-check-secret-0123456789-abcdefghijklmnop" AUTH_LOG=warn
# EdDSA access tokens (the key generated into the work directory) and token introspection on,
# so that the JWK Set and /introspect are fuzzed with everything else.
export AUTH_JWT_ALGORITHM=EdDSA AUTH_DATA_DIR="$work"
export AUTH_INTROSPECTION_CLIENT_ID=api-check AUTH_INTROSPECTION_SECRET="api-check-introspection-0123456789-abcdef"
admin_password="api-check-admin-password-93"
echo "$admin_password" | "$bin" create-admin --username apicheck >/dev/null
"$bin" >"$work/server.log" 2>&1 &
server=$!
# HTTP with Python's standard library (no curl needed): GET url [file], or POST url json.
http() {
    python3 - "$@" <<'PY'
import json, sys, time, urllib.request
method, url, *rest = sys.argv[1:]
if method == "wait":
    for _ in range(100):
        try:
            urllib.request.urlopen(url, timeout=1)
            sys.exit(0)
        except OSError:
            time.sleep(0.1)
    sys.exit("the server did not answer " + url)
if method == "get":
    open(rest[0], "wb").write(urllib.request.urlopen(url, timeout=10).read())
else:
    req = urllib.request.Request(url, data=rest[0].encode(), headers={"Content-Type": "application/json"})
    print(json.load(urllib.request.urlopen(req, timeout=30))["access_token"])
PY
}
http wait "$base/api/auth/captcha/status"

http get "$base/api/auth/openapi.json" "$work/openapi.json"
openapi-spec-validator "$work/openapi.json"

token=$(http post "$base/api/auth/login" "{\"username\":\"apicheck\",\"password\":\"$admin_password\"}")

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
run() {
    # schemathesis keeps its cache in the working directory: the throwaway one.
    (cd "$work" && schemathesis run "$work/openapi.json" --url "$base/api/auth" --checks "$checks" \
        --max-examples "$examples" --seed 20261204 --no-color "$@")
}
echo "scripts/api-check.sh: schemathesis, anonymous"
run
# Without the operations that end the admin's own session (the fuzzer reuses ids it has seen
# in answers, the admin's session id among them), so that every other operation is reached with
# a live token; the anonymous pass covers those.
echo "scripts/api-check.sh: schemathesis, as an admin"
run -H "Authorization: Bearer $token" \
    --exclude-operation-id Logout --exclude-operation-id DeleteAccount --exclude-operation-id ChangePassword \
    --exclude-operation-id RevokeSession --exclude-operation-id AdminRevokeUserSessions \
    --exclude-operation-id AdminRevokeUserSession
