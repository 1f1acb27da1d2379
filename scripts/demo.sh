#!/usr/bin/env bash
# The main job end to end on an embedded default: a local Jira mock, tap-jira into a DuckDB
# file, a query of the result; then some issues change and an incremental run from the
# saved state loads only those. Run it with `make demo` (which builds first).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/singer-rs/target}/release}"
DEMO=.demo
rm -rf "$DEMO" && mkdir -p "$DEMO"

"$BIN/jira-mock" --port 0 --email demo@example.com --api-token demo-token >"$DEMO/mock.out" 2>"$DEMO/mock.log" &
MOCK_PID=$!
trap 'kill $MOCK_PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q listening "$DEMO/mock.out" 2>/dev/null && break; sleep 0.1; done
URL=$(grep -o 'http://[0-9.:]*' "$DEMO/mock.out")
echo "Jira mock at $URL"

cat >"$DEMO/tap-jira.json" <<JSON
{"domain": "$URL", "email": "demo@example.com", "api_token": "demo-token", "start_date": "2024-01-01T00:00:00Z"}
JSON
cat >"$DEMO/target-duckdb.json" <<JSON
{"path": "$DEMO/jira.duckdb", "state_file": "$DEMO/state.json"}
JSON
query() { "$BIN/duckdb-query" "$DEMO/jira.duckdb" "$1"; }

echo
echo "== run 1: full sync  (tap-jira | target-duckdb)"
"$BIN/tap-jira" --config "$DEMO/tap-jira.json" 2>"$DEMO/tap-1.log" \
  | "$BIN/target-duckdb" --config "$DEMO/target-duckdb.json" 2>"$DEMO/target-1.log" >"$DEMO/states-1.jsonl"
echo "rows per table:"
query "SELECT stream, rows_loaded FROM _sdc_streams ORDER BY stream"
echo "issues per project and status:"
query "SELECT fields->>'\$.project.key' AS project, fields->>'\$.status.name' AS status, count(*) AS issues
       FROM issues GROUP BY ALL ORDER BY project, status"
bookmark() { python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["bookmarks"]["issues"]))' "$DEMO/state.json"; }
echo "issues bookmark after run 1: $(bookmark)"

echo
echo "== 5 issues change in Jira"
curl -fsS -X POST "$URL/_mock/touch?count=5"; echo

echo
echo "== run 2: incremental, from the saved state"
"$BIN/tap-jira" --config "$DEMO/tap-jira.json" --state "$DEMO/state.json" 2>"$DEMO/tap-2.log" \
  | "$BIN/target-duckdb" --config "$DEMO/target-duckdb.json" 2>"$DEMO/target-2.log" >"$DEMO/states-2.jsonl"
echo "issues read by run 2: $(grep -o 'stream=issues records=[0-9]*' "$DEMO/tap-2.log" | head -1 | cut -d= -f3) (the changed ones, and the one at the bookmark: the bound is inclusive)"
query "SELECT key, fields->>'\$.status.name' AS status, updated FROM issues ORDER BY updated DESC, key LIMIT 5"
query "SELECT count(*) AS issues, count(DISTINCT id) AS distinct_ids FROM issues"
echo "issues bookmark after run 2: $(bookmark)"
echo
echo "Logs and configs are in $DEMO/. Query the database with: $BIN/duckdb-query $DEMO/jira.duckdb 'SELECT ...'"
