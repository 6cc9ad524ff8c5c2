#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, the store conformance suite (memory, SQLite,
# PostgreSQL, Redis), end-to-end tests over real HTTP (with a real SMTP server and a local
# siteverify server started by the tests), the example binaries' tests and the doc tests.
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

if [ -z "${AUTH_TEST_REDIS_URL:-}" ]; then
    if ! command -v redis-server >/dev/null 2>&1; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            echo "scripts/test.sh: installing Redis" >&2
            apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
        else
            echo "scripts/test.sh: redis-server is not installed (apt-get install redis-server)" >&2
            exit 1
        fi
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

locked=()
[ -f Cargo.lock ] && locked=(--locked)

cargo test --workspace --all-features "${locked[@]}" "$@"
