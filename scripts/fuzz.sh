#!/usr/bin/env bash
# Runs each cargo-fuzz target for FUZZ_SECONDS (default 30), seeded with the fixtures.
# Works on the stable toolchain with RUSTC_BOOTSTRAP=1. Crashes land in fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${FUZZ_SECONDS:-30}"
export RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/singer-rs/fuzz-target}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
mkdir -p fuzz/corpus/message_reader fuzz/corpus/schema_to_arrow fuzz/corpus/record_to_arrow
cp fixtures/*.singer fixtures/bad/*.singer fuzz/corpus/message_reader/ 2>/dev/null || true
for f in schemas/jira/*.json; do cp "$f" "fuzz/corpus/schema_to_arrow/$(basename "$f")"; done
python3 - <<'PY'
import json, glob, os
for path in glob.glob("fixtures/*.singer"):
    schemas, records = {}, {}
    for line in open(path, encoding="utf-8", errors="replace"):
        try: m = json.loads(line)
        except Exception: continue
        if m.get("type") == "SCHEMA": schemas[m["stream"]] = m["schema"]
        if m.get("type") == "RECORD": records.setdefault(m["stream"], []).append(m["record"])
    for s, schema in schemas.items():
        out = os.path.join("fuzz/corpus/record_to_arrow", os.path.basename(path) + "." + "".join(c if c.isalnum() else "_" for c in s) + ".json")
        rs = records.get(s, [])[:20]
        # The raw path's own input: record texts, one with a repeated key.
        texts = [json.dumps(r, ensure_ascii=False) for r in rs[:5]] + ['{"a": 1, "a": {"b": [1.0, -0, 1e400]}}']
        json.dump({"schema": schema, "records": rs, "texts": texts}, open(out, "w"))
PY
total=0
for target in message_reader schema_to_arrow record_to_arrow; do
  log=$(mktemp)
  (cd fuzz && cargo fuzz run "$target" "corpus/$target" -- -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -max_len=65536) 2>&1 | tee "$log" | tail -n 3
  runs=$(grep -o 'Done [0-9]* runs' "$log" | grep -o '[0-9]*' | tail -1 || echo 0)
  echo "fuzz $target: ${runs:-0} executions in ${SECONDS_EACH}s, no crash"
  total=$((total + ${runs:-0}))
  rm -f "$log"
done
echo "fuzz total: $total executions"
