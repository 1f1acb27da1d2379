//! Helpers for end-to-end tests: the built binaries, a Jira mock in the background, pipes,
//! and queries of the results.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub use jira_mock::{MockConfig, MockHandle};
use serde_json::Value;

/// A binary of the workspace, built in the same profile as the tests.
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

/// A fixture file.
pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// A Jira mock serving in the background for the life of the value.
pub struct Mock {
    pub url: String,
    pub handle: MockHandle,
    _server: jira_mock::MockServer,
    _runtime: tokio::runtime::Runtime,
}

impl Mock {
    pub fn start(config: MockConfig) -> Mock {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime
            .block_on(jira_mock::start(config))
            .expect("mock starts");
        Mock {
            url: server.base_url().to_string(),
            handle: server.handle(),
            _server: server,
            _runtime: runtime,
        }
    }
}

/// Writes `value` as JSON into `dir/name`.
pub fn write_json(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).expect("write json");
    path
}

/// What a `tap | target` pipeline did.
pub struct Pipeline {
    pub tap: Output,
    pub target: Output,
}

impl Pipeline {
    /// The states the target acknowledged.
    pub fn states(&self) -> Vec<Value> {
        String::from_utf8_lossy(&self.target.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("target stdout holds only JSON states"))
            .collect()
    }
    pub fn tap_stderr(&self) -> String {
        String::from_utf8_lossy(&self.tap.stderr).into_owned()
    }
    pub fn target_stderr(&self) -> String {
        String::from_utf8_lossy(&self.target.stderr).into_owned()
    }
}

/// Runs `tap ARGS | target ARGS` to the end.
pub fn pipeline(tap: &str, tap_args: &[&Path], target: &str, target_args: &[&Path]) -> Pipeline {
    let mut tap_cmd = Command::new(bin(tap));
    for a in tap_args {
        tap_cmd.arg(a);
    }
    let mut tap_child = tap_cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tap starts");
    let tap_out = tap_child.stdout.take().expect("tap stdout");
    let mut target_cmd = Command::new(bin(target));
    for a in target_args {
        target_cmd.arg(a);
    }
    let target_child = target_cmd
        .stdin(Stdio::from(tap_out))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("target starts");
    // Drain the tap's logs while the target runs, or a chatty tap blocks on a full pipe.
    let mut tap_stderr = tap_child.stderr.take().expect("tap stderr");
    let drain = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut tap_stderr, &mut buf);
        buf
    });
    let target = target_child.wait_with_output().expect("target ends");
    let status = tap_child.wait().expect("tap ends");
    let stderr = drain.join().unwrap_or_default();
    Pipeline {
        tap: Output {
            status,
            stdout: Vec::new(),
            stderr,
        },
        target,
    }
}

/// `--config FILE` style arguments as paths.
pub fn args<'a>(parts: &'a [&'a Path]) -> Vec<&'a Path> {
    parts.to_vec()
}

/// The first column of the first row of a query, as text.
pub fn scalar(db: &Path, sql: &str) -> String {
    let config = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)
        .expect("config");
    let conn = duckdb::Connection::open_with_flags(db, config).expect("open db");
    let v: duckdb::types::Value = conn
        .query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    match v {
        duckdb::types::Value::Null => "NULL".into(),
        duckdb::types::Value::Text(s) => s,
        duckdb::types::Value::BigInt(n) => n.to_string(),
        duckdb::types::Value::Int(n) => n.to_string(),
        duckdb::types::Value::HugeInt(n) => n.to_string(),
        duckdb::types::Value::Boolean(b) => b.to_string(),
        other => format!("{other:?}"),
    }
}

/// Starts a target reading from a pipe, for tests that feed and kill it.
pub fn spawn_target(target: &str, config: &Path) -> Child {
    Command::new(bin(target))
        .arg("--config")
        .arg(config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("target starts")
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

/// Runs a target on `input` to the end.
pub fn run_target(target: &str, config: &Path, input: &[u8]) -> Output {
    let mut child = spawn_target(target, config);
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("target ends");
    let _ = writer.join();
    out
}
