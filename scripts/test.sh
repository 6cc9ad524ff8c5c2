#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, the store conformance suite (memory, SQLite,
# PostgreSQL, Redis), end-to-end tests over real HTTP (with a real SMTP server and a local
# siteverify server started by the tests; run once against the axum example server and once
# against the actix-web one), the example binaries' tests (the login page in
# headless Chromium included, and the access tokens of every AUTH_JWT_ALGORITHM checked against
# PyJWT in both directions) and the doc tests; then scripts/api-check.sh validates the OpenAPI
# document and fuzzes both example servers against it (openapi-spec-validator, schemathesis).
#
# Usage: scripts/test.sh [extra cargo test arguments]
#
# Unless AUTH_TEST_POSTGRES_URL / AUTH_TEST_REDIS_URL are already set, it starts throwaway
# PostgreSQL and Redis servers on free loopback ports in a temporary directory (installing them
# with apt-get when missing and running as root), exports those URLs, and stops the servers on
# exit. Tests that need them fail, rather than skip, when CI is set and a URL is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if ! command -v cargo >/dev/null 2>&1; then
    echo "scripts/test.sh: cargo is not installed; see https://rustup.rs" >&2
    exit 1
fi

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

work=$(mktemp -d -t auth-test.XXXXXX)
chmod 755 "$work"
cleanup() {
    [ -n "${pg_dir:-}" ] && "$root/scripts/pg-cluster.sh" stop "$pg_dir"
    [ -f "$work/redis.pid" ] && kill "$(cat "$work/redis.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

if [ -z "${AUTH_TEST_POSTGRES_URL:-}" ]; then
    pg_dir="$work/postgres"
    port=$(free_port)
    "$root/scripts/pg-cluster.sh" start "$pg_dir" "$port"
    export AUTH_TEST_POSTGRES_URL="postgres://auth@127.0.0.1:$port/postgres"
    echo "scripts/test.sh: PostgreSQL at $AUTH_TEST_POSTGRES_URL"
fi

# Installs Debian packages when running as root with apt-get (the package lists are updated once).
apt_updated=
apt_install() {
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "scripts/test.sh: installing $*" >&2
        [ -n "$apt_updated" ] || { apt-get update -qq >/dev/null && apt_updated=1; }
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
    else
        return 1
    fi
}

if [ -z "${AUTH_TEST_REDIS_URL:-}" ]; then
    if ! command -v redis-server >/dev/null 2>&1; then
        apt_install redis-server || {
            echo "scripts/test.sh: redis-server is not installed (apt-get install redis-server)" >&2
            exit 1
        }
    fi
    port=$(free_port)
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --daemonize yes \
        --pidfile "$work/redis.pid" --logfile "$work/redis.log" --dir "$work"
    for _ in $(seq 50); do
        redis-cli -p "$port" ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    export AUTH_TEST_REDIS_URL="redis://127.0.0.1:$port/"
    echo "scripts/test.sh: Redis at $AUTH_TEST_REDIS_URL"
fi

# The login page's browser test (examples/server/tests/browser.rs): Debian's Chromium and
# ChromeDriver, driven by Selenium from PyPI. Without them that test fails under CI.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    apt_install chromium chromium-driver || echo "scripts/test.sh: chromium / chromium-driver are not installed" >&2
fi
if ! python3 -c 'import selenium' >/dev/null 2>&1; then
    echo "scripts/test.sh: installing selenium (PyPI)" >&2
    python3 -m pip install -q --disable-pip-version-check selenium >/dev/null 2>&1 ||
        echo "scripts/test.sh: could not install selenium (pip install selenium)" >&2
fi
# The access tokens checked by an independent JWT library (examples/server/tests/pyjwt.rs runs
# tests/jwt/pyjwt_interop.py): PyJWT with cryptography, from PyPI. Without them that test fails
# under CI.
if ! python3 -c 'import jwt, cryptography' >/dev/null 2>&1; then
    echo "scripts/test.sh: installing pyjwt[crypto] (PyPI)" >&2
    python3 -m pip install -q --disable-pip-version-check 'pyjwt[crypto]' >/dev/null 2>&1 ||
        echo "scripts/test.sh: could not install pyjwt[crypto] (pip install 'pyjwt[crypto]')" >&2
fi

locked=()
[ -f Cargo.lock ] && locked=(--locked)

cargo test --workspace --all-features "${locked[@]}" "$@"

# The end-to-end suite again, against the actix-web example server (tests/src/lib.rs reads
# AUTH_E2E_ADAPTER): the same requests, the same expected answers, on the other adapter. The
# test binaries built above are run again as they are: `cargo test -p auth-e2e-tests` would
# resolve other features than the workspace build and compile everything a second time.
mapfile -t e2e_tests < <(
    cargo test --workspace --all-features "${locked[@]}" --no-run --message-format=json 2>/dev/null |
        python3 -c '
import json, sys
for line in sys.stdin:
    message = json.loads(line)
    target = message.get("target") or {}
    if (message.get("reason") == "compiler-artifact" and message.get("executable")
            and "#auth-e2e-tests@" in message.get("package_id", "") and target.get("kind") == ["test"]):
        print(message["executable"])
'
)
if [ "${#e2e_tests[@]}" -eq 0 ]; then
    echo "scripts/test.sh: found no end-to-end test binary to run against actix-web" >&2
    exit 1
fi
echo "scripts/test.sh: the end-to-end suite against the actix-web example server (${#e2e_tests[@]} binaries)"
for test_binary in "${e2e_tests[@]}"; do
    (cd "$root/tests" && AUTH_E2E_ADAPTER=actix "$test_binary")
done

# The OpenAPI document validated and the running example server fuzzed against it.
"$root/scripts/api-check.sh" "${CARGO_TARGET_DIR:-$root/target}/debug/auth-example-server"
# …and the actix-web example server against the same document.
"$root/scripts/api-check.sh" "${CARGO_TARGET_DIR:-$root/target}/debug/auth-actix-server"
