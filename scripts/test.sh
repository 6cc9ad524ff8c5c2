#!/usr/bin/env bash
# Runs every test of the workspace: unit tests, the store conformance suite (memory, SQLite),
# end-to-end tests over real HTTP, the example binaries' tests and the doc tests.
#
# Usage: scripts/test.sh [extra cargo test arguments]
#
# Needs only a Rust toolchain. (When backends that need PostgreSQL or Redis land, this script
# starts throwaway servers for them and exports AUTH_TEST_POSTGRES_URL / AUTH_TEST_REDIS_URL.)
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "scripts/test.sh: cargo is not installed; see https://rustup.rs" >&2
    exit 1
fi

locked=()
[ -f Cargo.lock ] && locked=(--locked)

cargo test --workspace --all-features "${locked[@]}" "$@"
