//! Running the binaries: a target over a file or a pipe, and `tap | target`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

use crate::{bin, json_lines};

/// What `tap | target` did.
pub struct Pipeline {
    /// The tap's exit status and logs (its stdout went to the target).
    pub tap: Output,
    /// The target's exit status, states and logs.
    pub target: Output,
}

impl Pipeline {
    /// The states the target acknowledged.
    pub fn states(&self) -> Vec<Value> {
        json_lines(&self.target.stdout)
    }
    /// The tap's logs.
    pub fn tap_stderr(&self) -> String {
        String::from_utf8_lossy(&self.tap.stderr).into_owned()
    }
    /// The target's logs.
    pub fn target_stderr(&self) -> String {
        String::from_utf8_lossy(&self.target.stderr).into_owned()
    }
}

/// Runs `tap ARGS | target ARGS` to the end.
pub fn pipeline(tap: &str, tap_args: &[&Path], target: &str, target_args: &[&Path]) -> Pipeline {
    let mut tap_child = Command::new(bin(tap))
        .args(tap_args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tap starts");
    let tap_out = tap_child.stdout.take().expect("tap stdout");
    let target_child = Command::new(bin(target))
        .args(target_args)
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

/// Runs a target on `input` (through its stdin) to the end.
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

/// One run of a target binary over an input file, in a directory of its own.
pub struct TargetRun {
    /// The run's directory: its config, and whatever the target wrote there.
    pub dir: tempfile::TempDir,
    /// Exit status, stdout (the states) and stderr (the logs).
    pub output: Output,
}

impl TargetRun {
    /// A path in the run's directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// The states the target acknowledged, in order.
    pub fn states(&self) -> Vec<Value> {
        json_lines(&self.output.stdout)
    }
    /// The target's logs.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }
    /// Panics with the logs unless the target succeeded.
    pub fn assert_ok(&self) {
        assert!(
            self.output.status.success(),
            "exit {:?}\n{}",
            self.output.status,
            self.stderr()
        );
    }
}

/// Runs `target --config CONFIG --input INPUT` in `dir`: the config is `config` with the
/// settings of `extra` laid over it, written there as `config.json`.
pub fn load_target(
    target: &str,
    dir: tempfile::TempDir,
    mut config: Value,
    extra: &Value,
    input: &Path,
) -> TargetRun {
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    let config_path = dir.path().join("config.json");
    std::fs::write(&config_path, config.to_string()).expect("config");
    let output = Command::new(bin(target))
        .arg("--config")
        .arg(&config_path)
        .arg("--input")
        .arg(input)
        .output()
        .unwrap_or_else(|e| panic!("run {target}: {e}"));
    TargetRun { dir, output }
}
