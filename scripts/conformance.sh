#!/usr/bin/env bash
# make conformance TARGET=path/to/target-binary [ARGS="--kind none --config-template t.json"]
# Runs every fixture stream through any Singer target and checks the result.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/singer-rs/target}/release}"
TARGET="${1:-}"
if [ -z "$TARGET" ]; then
  echo "usage: make conformance TARGET=path/to/target-binary (e.g. $BIN/target-duckdb)" >&2
  exit 2
fi
exec "$BIN/singer-conformance" --target "$TARGET" --fixtures fixtures ${ARGS:-}
