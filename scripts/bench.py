#!/usr/bin/env python3
"""`make bench`: speed and memory of the targets against their baselines, in one run.

For each size (BENCH_RECORDS, default "100000 1000000"), on the same generated file of
Jira-like ~1 KB records, this measures wall time, records/s and peak RSS of:

  * `cat` of the file (the I/O floor) and a bare serde_json parse of every line;
  * our target-duckdb (append-only, and upsert on a file where 20% of records repeat a key);
  * our target-parquet;
  * DuckDB itself: CREATE TABLE AS read_ndjson, and COPY read_ndjson TO parquet with its
    default codec (snappy) and with zstd, target-parquet's default (the same bundled DuckDB
    our target uses, through duckdb-query);
  * the Python target-duckdb from PyPI, with duckdb pinned to 1.1.3 (2.x makes it drop the
    first row of every batch), installed into a virtualenv under ~/.cache/singer-rs;
  * dlt (`dlt[duckdb,parquet]` from PyPI) loading the same records into DuckDB and into
    Parquet files (scripts/bench_dlt.py), at sizes up to BENCH_DLT_MAX_RECORDS (100,000).
    The Meltano SDK's target-parquet 1.1.2 is not on PyPI (only an unrelated 0.0.1), so its
    figure from shared/NOTES.md (2.1k records/s at 100k, 0.6k/s at 1M) is quoted, not run.

Then tap-jira against the Jira mock (BENCH_JIRA_PROJECTS x BENCH_JIRA_ISSUES_PER_PROJECT
issues, default 10 x 300), its output captured twice: as RECORD messages, and with
`batch_config` as Parquet BATCH files; target-duckdb loads each capture, timed on its own
(the tap is bound by HTTP to the mock), and the row counts must agree.

It prints a Markdown table of ratios against those baselines and writes it to
bench/results.md. `--smoke` runs a tiny size without the Python peers (CI keeps it working).
"""

import argparse
import datetime
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/singer-rs/target"))
BIN = Path(os.environ.get("BIN", TARGET_DIR / "release"))
CACHE = Path.home() / ".cache/singer-rs"
PY_TARGET_DUCKDB = CACHE / "bench-venv-target-duckdb"
PY_DLT = CACHE / "bench-venv-dlt"
# dlt takes about 50 s and 3.7 GB per 100k records into DuckDB here: larger sizes skip it.
DLT_MAX_RECORDS = int(os.environ.get("BENCH_DLT_MAX_RECORDS", "100000"))


def measure(cmd, stdin_path=None, env=None, cwd=None, keep_stdout=True):
    """Runs a command; returns (seconds, peak RSS in MB, stdout, stderr).

    Peak RSS is the child's own high-water mark, but Linux starts it at the RSS of the
    process that forked it, so this script never holds large outputs in memory: the floor
    is this Python process (~10-20 MB), shown by the `cat` row."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    out = tempfile.TemporaryFile() if keep_stdout else subprocess.DEVNULL
    err = tempfile.TemporaryFile()
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=stdin, stdout=out, stderr=err, env=env, cwd=cwd)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    if stdin_path:
        stdin.close()
    stdout = ""
    if keep_stdout:
        out.seek(0)
        stdout = out.read(1 << 20).decode(errors="replace")
    err.seek(max(0, os.fstat(err.fileno()).st_size - (1 << 16)))
    stderr = err.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {code}:\n{stderr[-2000:]}")
    return seconds, usage.ru_maxrss / 1024.0, stdout, stderr


def venv(path, packages):
    python = path / "bin" / "python"
    marker = path / ".installed"
    want = " ".join(packages)
    if not (marker.exists() and marker.read_text() == want):
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(path)], check=True)
        subprocess.run([str(path / "bin" / "pip"), "install", "--quiet", *packages], check=True)
        marker.write_text(want)
    return path / "bin"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--smoke", action="store_true", help="tiny size, no Python peers")
    parser.add_argument("--no-python", action="store_true", help="skip the Python peers")
    args = parser.parse_args()
    sizes = [2000] if args.smoke else [int(s) for s in os.environ.get("BENCH_RECORDS", "100000 1000000").split()]
    python_peers = not (args.smoke or args.no_python)

    py_duckdb = None
    py_dlt = None
    if python_peers:
        try:
            py_duckdb = venv(PY_TARGET_DUCKDB, ["target-duckdb==0.8.0", "duckdb==1.1.3"]) / "target-duckdb"
        except subprocess.CalledProcessError as e:
            print(f"skipping the Python target-duckdb: {e}", file=sys.stderr)
        try:
            py_dlt = venv(PY_DLT, ["dlt[duckdb,parquet]==1.31.0"]) / "python"
        except subprocess.CalledProcessError as e:
            print(f"skipping dlt: {e}", file=sys.stderr)

    report = [
        f"# Benchmarks ({datetime.date.today()}, {platform.machine()}, {os.cpu_count()} cores)",
        "",
        "Same generated Jira-like file per size; wall time, records/s and peak RSS; ratios against",
        "baselines measured in the same run. Python target-duckdb 0.8.0 runs with duckdb 1.1.3",
        "(with duckdb 2.x it silently drops the first row of every batch).",
        "",
    ]
    peaks = {}
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix="singer-bench-"))
        try:
            report += run_size(n, work, py_duckdb, py_dlt, peaks)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    work = Path(tempfile.mkdtemp(prefix="singer-bench-jira-"))
    try:
        report += run_jira(work, smoke=args.smoke)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(sizes) > 1:
        small, large = min(sizes), max(sizes)
        report += [f"## Peak RSS, {large:,} records against {small:,}", "",
                   "| system | ratio | goal |", "|---|---:|---|"]
        for name in ("target-duckdb append", "target-duckdb upsert", "target-parquet"):
            if (name, small) in peaks and (name, large) in peaks:
                report.append(f"| {name} | {peaks[(name, large)] / peaks[(name, small)]:.2f}x "
                              f"({peaks[(name, large)]:,.0f} MB) | <= 1.2x and < 300 MB |")
        report.append("")
    text = "\n".join(report) + "\n"
    print(text)
    if not args.smoke:
        out = ROOT / "bench" / "results.md"
        out.parent.mkdir(exist_ok=True)
        out.write_text(text)
        print(f"written to {out}")


def run_size(n, work, py_duckdb, py_dlt, peaks):
    stream, plain, upserts = work / "stream.singer", work / "records.ndjson", work / "upserts.singer"
    gen = BIN / "singer-bench"
    subprocess.run([gen, "generate", "--records", str(n), "--out", stream, "--records-out", plain], check=True)
    subprocess.run([gen, "generate", "--records", str(n), "--repeat-share", "0.2", "--out", upserts], check=True)
    size_mb = stream.stat().st_size / 1e6
    rows = []

    def record(name, seconds, rss, note=""):
        rows.append((name, seconds, n / seconds, rss, note))

    s, rss, _, _ = measure(["cat", stream], keep_stdout=False)
    record("cat (I/O floor)", s, rss)
    s, rss, out, _ = measure([gen, "parse", stream])
    record("serde_json parse of every line", s, rss)

    def our_target(binary, config, input_path, name, note=""):
        cfg = work / f"{name}.json"
        cfg.write_text(json.dumps(config))
        s, rss, _, _ = measure([BIN / binary, "--config", cfg], stdin_path=input_path)
        record(name, s, rss, note)
        peaks[(name, n)] = rss

    our_target("target-duckdb", {"path": str(work / "append.duckdb"), "load_method": "append-only"}, stream, "target-duckdb append")
    our_target("target-duckdb", {"path": str(work / "upsert.duckdb")}, upserts, "target-duckdb upsert", "20% repeated keys")
    our_target("target-parquet", {"destination_path": str(work / "parquet")}, stream, "target-parquet")

    # The same records as Parquet BATCH files, as a tap with batch_config (format parquet)
    # hands them over: written once by target-parquet (untimed), then one BATCH message per
    # file. The targets take their rows as Arrow, without a JSON step.
    batch_dir = work / "batch-files"
    cfg = work / "batch-files.json"
    cfg.write_text(json.dumps({"destination_path": str(batch_dir), "add_record_metadata": False,
                               "max_rows_per_file": 100_000}))
    with open(stream, "rb") as f:
        subprocess.run([BIN / "target-parquet", "--config", cfg], stdin=f, stdout=subprocess.DEVNULL, check=True)
    batches = work / "batches.singer"
    with open(stream) as src, open(batches, "w") as out:
        out.write(src.readline())  # the SCHEMA
        for i, path in enumerate(sorted(batch_dir.glob("issues/**/*.parquet"))):
            out.write(json.dumps({"type": "BATCH", "stream": "issues", "encoding": {"format": "parquet", "compression": "none"},
                                  "manifest": [path.as_uri()]}) + "\n")
            out.write(json.dumps({"type": "STATE", "value": {"batches": i + 1}}) + "\n")
    our_target("target-duckdb", {"path": str(work / "batch.duckdb"), "load_method": "append-only"}, batches,
               "target-duckdb from Parquet BATCH files", "same records")
    our_target("target-parquet", {"destination_path": str(work / "batch-parquet")}, batches,
               "target-parquet from Parquet BATCH files", "same records")
    loaded = subprocess.run([BIN / "duckdb-query", "--scalars", work / "batch.duckdb", "SELECT count(*) FROM issues"],
                            check=True, capture_output=True, text=True).stdout.split()
    if [v.strip('"') for v in loaded] != [str(n)]:
        raise RuntimeError(f"the BATCH path loaded {loaded} rows of {n}")

    q = BIN / "duckdb-query"
    s, rss, _, _ = measure([q, "--write", work / "ndjson.duckdb", f"CREATE TABLE issues AS SELECT * FROM read_ndjson('{plain}')"])
    record("DuckDB read_ndjson -> table", s, rss, "same bundled DuckDB")
    s, rss, _, _ = measure([q, "--write", ":memory:", f"COPY (SELECT * FROM read_ndjson('{plain}')) TO '{work / 'ndjson.parquet'}' (FORMAT parquet)"])
    record("DuckDB read_ndjson -> parquet", s, rss, "DuckDB's default codec, snappy")
    s, rss, _, _ = measure([q, "--write", ":memory:", f"COPY (SELECT * FROM read_ndjson('{plain}')) TO '{work / 'ndjson-zstd.parquet'}' (FORMAT parquet, COMPRESSION zstd)"])
    record("DuckDB read_ndjson -> parquet, zstd", s, rss, "target-parquet's default codec")

    if py_duckdb:
        cfg = work / "py-duckdb.json"
        cfg.write_text(json.dumps({"filepath": str(work / "py.duckdb"), "default_target_schema": "main"}))
        s, rss, _, _ = measure([py_duckdb, "--config", cfg], stdin_path=stream)
        record("Python target-duckdb 0.8 append", s, rss, "duckdb 1.1.3")
        cfg.write_text(json.dumps({"filepath": str(work / "py-upsert.duckdb"), "default_target_schema": "main"}))
        s, rss, _, _ = measure([py_duckdb, "--config", cfg], stdin_path=upserts)
        record("Python target-duckdb 0.8 upsert", s, rss, "20% repeated keys")

    if py_dlt and n <= DLT_MAX_RECORDS:
        for kind, name in (("duckdb", "dlt 1.31 -> DuckDB"), ("parquet", "dlt 1.31 -> Parquet files")):
            s, rss, out, _ = measure([py_dlt, ROOT / "scripts" / "bench_dlt.py", plain, work, kind])
            loaded = json.loads(out.strip().splitlines()[-1])["rows"]
            if loaded != n:
                raise RuntimeError(f"dlt loaded {loaded} rows of {n}")
            record(name, s, rss, "records from the same file")

    by = {r[0]: r for r in rows}

    def ratio(a, b):
        if a in by and b in by:
            return f"{by[a][2] / by[b][2]:.1f}x"
        return "n/a"

    lines = [f"## {n:,} records ({size_mb:.0f} MB of Singer messages)", "",
             "| system | seconds | records/s | peak RSS MB | note |", "|---|---:|---:|---:|---|"]
    for name, s, rate, rss, note in rows:
        lines.append(f"| {name} | {s:.2f} | {rate:,.0f} | {rss:,.0f} | {note} |")
    lines += ["", "| ratio | value | goal |", "|---|---:|---|",
              f"| target-duckdb append vs Python target-duckdb | {ratio('target-duckdb append', 'Python target-duckdb 0.8 append')} | >= 30x |",
              f"| target-duckdb append vs DuckDB read_ndjson | {ratio('target-duckdb append', 'DuckDB read_ndjson -> table')} | >= 1x |",
              f"| target-duckdb upsert time / append time | {by['target-duckdb append'][2] / by['target-duckdb upsert'][2]:.2f} | <= 1.5 |",
              f"| target-parquet vs DuckDB COPY read_ndjson TO parquet (its default, snappy) | {ratio('target-parquet', 'DuckDB read_ndjson -> parquet')} | >= 1x |",
              f"| target-parquet vs DuckDB COPY read_ndjson TO parquet, both zstd | {ratio('target-parquet', 'DuckDB read_ndjson -> parquet, zstd')} | >= 1x |",
              f"| target-duckdb from Parquet BATCH files vs from RECORDs | {ratio('target-duckdb from Parquet BATCH files', 'target-duckdb append')} | > 1x |",
              f"| target-parquet from Parquet BATCH files vs from RECORDs | {ratio('target-parquet from Parquet BATCH files', 'target-parquet')} | > 1x |",
              f"| target-duckdb append vs dlt -> DuckDB | {ratio('target-duckdb append', 'dlt 1.31 -> DuckDB')} | |",
              f"| target-parquet vs dlt -> Parquet files | {ratio('target-parquet', 'dlt 1.31 -> Parquet files')} | |",
              f"| target-parquet vs SDK target-parquet (NOTES.md figure, not run) | {by['target-parquet'][2] / (2100 if n <= 100_000 else 600):.0f}x | >= 50x |",
              f"| target-duckdb append share of a bare serde_json parse | {by['target-duckdb append'][2] / by['serde_json parse of every line'][2]:.0%} | |",
              f"| target-parquet share of a bare serde_json parse | {by['target-parquet'][2] / by['serde_json parse of every line'][2]:.0%} | |",
              ""]
    return lines


def run_jira(work, smoke):
    projects = 2 if smoke else int(os.environ.get("BENCH_JIRA_PROJECTS", "10"))
    per_project = 20 if smoke else int(os.environ.get("BENCH_JIRA_ISSUES_PER_PROJECT", "300"))
    email, token = "bench@example.com", "bench-token"
    mock = subprocess.Popen([BIN / "jira-mock", "--projects", str(projects), "--issues-per-project", str(per_project),
                             "--email", email, "--api-token", token], stdout=subprocess.PIPE, text=True)
    try:
        url = mock.stdout.readline().split()[-1]
        site = {"domain": url, "email": email, "api_token": token, "start_date": "2000-01-01T00:00:00Z"}
        captures = {}
        for mode, extra in (("RECORD messages", {}),
                            ("Parquet BATCH files", {"batch_config": {
                                "encoding": {"format": "parquet", "compression": "none"},
                                "storage": {"root": (work / "batches").as_uri()}, "batch_size": 50_000}})):
            cfg = work / f"tap-{len(captures)}.json"
            cfg.write_text(json.dumps({**site, **extra}))
            out = work / f"capture-{len(captures)}.singer"
            with open(out, "wb") as f:
                subprocess.run([BIN / "tap-jira", "--config", cfg], stdout=f, stderr=subprocess.DEVNULL, check=True)
            captures[mode] = out
    finally:
        mock.terminate()
        mock.wait()
    rows, counts = [], {}
    for mode, capture in captures.items():
        db = work / f"{len(rows)}.duckdb"
        cfg = work / f"target-{len(rows)}.json"
        cfg.write_text(json.dumps({"path": str(db)}))
        s, rss, _, _ = measure([BIN / "target-duckdb", "--config", cfg], stdin_path=capture, keep_stdout=False)
        rows.append((mode, s, rss, capture.stat().st_size / 1e6))
        counts[mode] = subprocess.run(
            [BIN / "duckdb-query", "--scalars", db, "SELECT count(*) FROM issues", "SELECT count(*) FROM issue_changelogs"],
            check=True, capture_output=True, text=True).stdout.split()
    if len(set(map(tuple, counts.values()))) != 1:
        raise RuntimeError(f"the two captures loaded different rows: {counts}")
    issues = int(counts["RECORD messages"][0].strip('"'))
    lines = [f"## tap-jira | target-duckdb, {issues:,} issues from the Jira mock", "",
             "tap-jira's output captured as RECORDs and as Parquet BATCH files (`batch_config`), then",
             "loaded by target-duckdb; the target's time alone, same rows either way.", "",
             "| tap output | tap stdout MB | target-duckdb seconds | peak RSS MB |", "|---|---:|---:|---:|"]
    for mode, s, rss, mb in rows:
        lines.append(f"| {mode} | {mb:.1f} | {s:.2f} | {rss:,.0f} |")
    lines += ["", f"Parquet BATCH files vs RECORDs: {rows[0][1] / rows[1][1]:.2f}x as fast (goal > 1x).", ""]
    return lines


if __name__ == "__main__":
    main()
