//! # singer-testing
//!
//! The harness every end-to-end test of the toolkit needs, in one place:
//!
//! | item | what |
//! |---|---|
//! | [`bin`], [`root`], [`fixture`] | the workspace's built binaries and files |
//! | [`write_json`], [`outcome`] | config files, and command results for assertion messages |
//! | [`json_lines`], [`records`], [`catalog_streams`] | a tap's messages, a stream's records, a catalog's streams |
//! | [`load_target`], [`TargetRun`] | a target binary over an input file, its states and logs |
//! | [`run_target`], [`spawn_target`] | a target fed through a pipe (to feed, and to kill) |
//! | [`pipeline`] | `tap | target` to the end |
//! | [`Mock`] | the local Jira Cloud mock, serving in the background |
//! | [`duckdb`] (feature `duckdb`) | DuckDB files and Parquet datasets read back |
//! | [`bench`] | Criterion benchmarks of a sink's commits |
//! | [`python`] | virtualenvs of Python peers and readers (Meltano, deltalake, pyarrow) |
//! | [`s3`] | a local S3-compatible server (moto), started and stopped by the test |

pub mod bench;
#[cfg(feature = "duckdb")]
pub mod duckdb;
mod mock;
mod process;
pub mod python;
pub mod s3;

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

pub use mock::{Mock, MockConfig, MockHandle};
pub use process::{Pipeline, TargetRun, load_target, pipeline, run_target, spawn_target};

/// A binary of the workspace, built in the same profile as the running test.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (cargo build --release --workspace --bins, or make test)",
        path.display()
    );
    path
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root")
        .to_path_buf()
}

/// A file under `fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// The lines of a fixture.
pub fn fixture_lines(name: &str) -> Vec<String> {
    std::fs::read_to_string(fixture(name))
        .expect("fixture")
        .lines()
        .map(str::to_string)
        .collect()
}

/// Writes `lines` into `dir/name`, each ending in a newline, as a tap's output would be.
pub fn write_lines(
    dir: &Path,
    name: &str,
    lines: impl IntoIterator<Item = impl AsRef<str>>,
) -> PathBuf {
    let mut text = String::new();
    for line in lines {
        text.push_str(line.as_ref());
        text.push('\n');
    }
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write lines");
    path
}

/// Where a tap resumed from `state` starts in `lines`: the index after the last STATE line
/// carrying it.
pub fn after_state(lines: &[String], state: &Value) -> usize {
    lines
        .iter()
        .rposition(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .and_then(|v| v.get("value").cloned())
                .as_ref()
                == Some(state)
        })
        .expect("a STATE line with that value")
        + 1
}

/// Writes `records` as a gzip JSON-lines file, as an SDK tap writes a BATCH file.
pub fn write_jsonl_gz(path: &Path, records: &[Value]) {
    use std::io::Write as _;
    let file = std::fs::File::create(path).expect("create batch file");
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    for record in records {
        writeln!(gz, "{record}").expect("write batch file");
    }
    gz.finish().expect("finish batch file");
}

/// A BATCH message line for `stream` (`format`: jsonl or parquet; `compression`: gzip or
/// none) listing `files` as `file://` URLs.
pub fn batch_message(stream: &str, format: &str, compression: &str, files: &[&Path]) -> String {
    let manifest: Vec<String> = files
        .iter()
        .map(|f| format!("file://{}", f.display()))
        .collect();
    serde_json::json!({"type": "BATCH", "stream": stream,
        "encoding": {"format": format, "compression": compression}, "manifest": manifest})
    .to_string()
}

/// Writes `value` as JSON into `dir/name`.
pub fn write_json(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).expect("write json");
    path
}

/// Whether a command succeeded, and its stdout then stderr, for assertion messages.
pub fn outcome(out: &Output) -> (bool, String) {
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// The `record`s of a stream among a tap's messages, in order.
pub fn records<'a>(messages: &'a [Value], stream: &str) -> Vec<&'a Value> {
    messages
        .iter()
        .filter(|m| m["type"] == "RECORD" && m["stream"] == stream)
        .map(|m| &m["record"])
        .collect()
}

/// The stream names of a catalog a tap wrote with `--discover`, in order.
pub fn catalog_streams(stdout: &[u8]) -> Vec<String> {
    let catalog: Value = serde_json::from_slice(stdout).expect("the catalog is JSON");
    catalog["streams"]
        .as_array()
        .expect("the catalog has streams")
        .iter()
        .filter_map(|s| s["stream"].as_str().map(str::to_string))
        .collect()
}

/// The JSON lines of a command's stdout: a tap's messages, or a target's states. Panics on
/// a line that is not JSON, since stdout must carry nothing else.
pub fn json_lines(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout)
        .lines()
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("stdout holds only JSON lines, not {l:?}: {e}"))
        })
        .collect()
}
