#!/usr/bin/env python3
"""One dlt load for `make bench`: the records of a JSON-lines file into DuckDB or Parquet.

dlt (https://dlthub.com) is the Python loader many teams pick instead of Singer targets.
Usage: bench_dlt.py RECORDS.ndjson WORK_DIR duckdb|parquet. Prints the rows loaded.
"""

import json
import os
import sys

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt  # noqa: E402


def main():
    path, work, kind = sys.argv[1], sys.argv[2], sys.argv[3]

    def rows():
        with open(path, "rb") as f:
            for line in f:
                yield json.loads(line)

    if kind == "duckdb":
        destination = dlt.destinations.duckdb(os.path.join(work, "dlt.duckdb"))
        fmt = None
    else:
        destination = dlt.destinations.filesystem("file://" + os.path.join(work, "dlt-parquet"))
        fmt = "parquet"
    pipeline = dlt.pipeline(
        pipeline_name="bench_" + kind,
        destination=destination,
        dataset_name="bench",
        pipelines_dir=os.path.join(work, "dlt-pipelines"),
    )
    info = pipeline.run(rows(), table_name="issues", loader_file_format=fmt)
    info.raise_on_failed_jobs()
    loaded = pipeline.last_trace.last_normalize_info.row_counts.get("issues", 0)
    print(json.dumps({"rows": loaded}))


if __name__ == "__main__":
    main()
