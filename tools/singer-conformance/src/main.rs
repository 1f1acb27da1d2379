//! `singer-conformance`: judge any Singer target with the fixture streams, or check what a
//! tap wrote.
//!
//! ```text
//! singer-conformance --target path/to/target-duckdb
//! singer-conformance --target path/to/other-target --config-template my.json --kind none
//! my-tap --config c.json | singer-conformance --tap-output -
//! ```
//!
//! Every `fixtures/**/NAME.singer` with a `NAME.expect.json` is piped into the target on
//! stdin, with a config made from a template (`{dir}` becomes a fresh directory). Checked,
//! for every target:
//!
//! * the exit status (success, or failure for bad input);
//! * stdout holds only states, each one a STATE value of the input, in input order, and the
//!   last one is the expected final state (acknowledged data, and nothing after it);
//! * no panic on stderr; for targets of this toolkit also the expected error text.
//!
//! For DuckDB and Parquet destinations (`--kind`, guessed from the binary name) the loaded
//! rows are counted and checked with SQL too (`{t}` in a check is the stream's table or
//! dataset), through target-duckdb's `duckdb-query --scalars` (`--query-bin`), so this tool
//! links no DuckDB of its own. `--mode append` expects what an append-only destination
//! holds.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

mod tap_output;

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Parser)]
#[command(
    name = "singer-conformance",
    version,
    about = "Run the fixture streams through a Singer target, or check a tap's output"
)]
struct Cli {
    /// The target binary.
    #[arg(
        long,
        required_unless_present = "tap_output",
        conflicts_with = "tap_output"
    )]
    target: Option<PathBuf>,
    /// Instead of judging a target, check a tap's captured output (`-` for stdin) against
    /// the Singer spec: see `tap_output`.
    #[arg(long, value_name = "FILE")]
    tap_output: Option<PathBuf>,
    /// The destination kind, for data checks (default: guessed from the binary name).
    #[arg(long, value_enum)]
    kind: Option<Kind>,
    /// Expected load semantics (default: upsert for DuckDB, append for Parquet).
    #[arg(long, value_enum)]
    mode: Option<Mode>,
    /// A JSON config in which `{dir}` is replaced by a fresh directory per fixture.
    #[arg(long)]
    config_template: Option<PathBuf>,
    /// The fixtures directory.
    #[arg(long, default_value = "fixtures")]
    fixtures: PathBuf,
    /// Check error messages too (default: for targets built with singer-rs).
    #[arg(long)]
    strict_errors: Option<bool>,
    /// Only fixtures whose name contains one of these.
    #[arg(long)]
    only: Vec<String>,
    /// The `duckdb-query` binary that reads the loaded rows back (default: the one beside
    /// this binary, else on PATH).
    #[arg(long)]
    query_bin: Option<PathBuf>,
}

fn default_query_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|d| d.join("duckdb-query")))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("duckdb-query"))
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Kind {
    Duckdb,
    Parquet,
    None,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum, Debug)]
enum Mode {
    Upsert,
    Append,
}

#[derive(Deserialize)]
struct Expectation {
    note: String,
    succeeds: bool,
    final_state: Option<Value>,
    #[serde(default)]
    error: Vec<String>,
    #[serde(default)]
    tables: Map<String, Value>,
    #[serde(default)]
    only: Option<Vec<String>>,
}

#[derive(Deserialize)]
struct TableExpectation {
    rows: i64,
    rows_append: Option<i64>,
    #[serde(default)]
    checks: Vec<Check>,
}

#[derive(Deserialize)]
struct Check {
    sql: String,
    equals: String,
    mode: Option<String>,
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("singer-conformance: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<bool> {
    if let Some(path) = &cli.tap_output {
        return tap_output::check_file(path);
    }
    let Some(target) = cli.target.clone() else {
        bail!("--target or --tap-output is needed");
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let kind = cli.kind.unwrap_or(if name.contains("duckdb") {
        Kind::Duckdb
    } else if name.contains("parquet") {
        Kind::Parquet
    } else {
        Kind::None
    });
    let mode = cli.mode.unwrap_or(if kind == Kind::Parquet {
        Mode::Append
    } else {
        Mode::Upsert
    });
    let template = match &cli.config_template {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => match kind {
            Kind::Duckdb => r#"{"path": "{dir}/out.duckdb"}"#.to_string(),
            Kind::Parquet => r#"{"destination_path": "{dir}/out"}"#.to_string(),
            Kind::None => bail!("--config-template is needed for a target of unknown kind"),
        },
    };
    let query_bin = cli.query_bin.clone().unwrap_or_else(default_query_bin);
    let strict = cli
        .strict_errors
        .unwrap_or_else(|| built_with_singer_rs(&target));
    let mut fixtures = Vec::new();
    collect(&cli.fixtures, &mut fixtures)?;
    fixtures.sort();
    if fixtures.is_empty() {
        bail!(
            "no fixtures with expectations under {}",
            cli.fixtures.display()
        );
    }
    let kind_name = format!("{kind:?}").to_lowercase();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    for fixture in &fixtures {
        let label = fixture
            .strip_prefix(&cli.fixtures)
            .unwrap_or(fixture)
            .display()
            .to_string();
        if !cli.only.is_empty() && !cli.only.iter().any(|o| label.contains(o.as_str())) {
            continue;
        }
        let expect: Expectation = serde_json::from_str(&std::fs::read_to_string(
            fixture.with_extension("expect.json"),
        )?)
        .with_context(|| format!("expectations of {label}"))?;
        if expect
            .only
            .as_ref()
            .is_some_and(|o| !o.contains(&kind_name))
        {
            skipped += 1;
            continue;
        }
        let problems = check(
            &query_bin, &target, fixture, &expect, &template, kind, mode, strict,
        )?;
        if problems.is_empty() {
            passed += 1;
            println!("PASS {label}");
        } else {
            failed += 1;
            println!("FAIL {label}: {}", expect.note);
            for p in problems {
                println!("     - {p}");
            }
        }
    }
    println!(
        "\n{passed} passed, {failed} failed, {skipped} not applicable to {kind_name} ({})",
        target.display()
    );
    Ok(failed == 0)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_dir() {
            collect(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "singer")
            && path.with_extension("expect.json").exists()
        {
            out.push(path);
        }
    }
    Ok(())
}

fn built_with_singer_rs(target: &Path) -> bool {
    Command::new(target)
        .args(["--about", "--format", "json"])
        .output()
        .ok()
        .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
        .and_then(|v| {
            v.get("sdk_version")
                .and_then(Value::as_str)
                .map(|s| s.starts_with("singer-rs"))
        })
        .unwrap_or(false)
}

/// The STATE values of the input, in order.
fn input_states(fixture: &Path) -> Result<Vec<Value>> {
    let bytes = std::fs::read(fixture)?;
    Ok(bytes
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<Value>(line).ok())
        .filter(|m| m.get("type").and_then(Value::as_str) == Some("STATE"))
        .filter_map(|m| m.get("value").cloned())
        .collect())
}

#[allow(clippy::too_many_arguments)]
fn check(
    query_bin: &Path,
    target: &Path,
    fixture: &Path,
    expect: &Expectation,
    template: &str,
    kind: Kind,
    mode: Mode,
    strict: bool,
) -> Result<Vec<String>> {
    let dir = tempfile::tempdir()?;
    let dir_text = dir.path().display().to_string();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        template.replace("{dir}", &dir_text.replace('\\', "\\\\")),
    )?;
    let mut child = Command::new(target)
        .arg("--config")
        .arg(&config)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", target.display()))?;
    let input = std::fs::read(fixture)?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let started = Instant::now();
    let output = loop {
        if child.try_wait()?.is_some() || started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            break child.wait_with_output()?;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let _ = writer.join();
    let mut problems = Vec::new();
    let stderr = String::from_utf8_lossy(&output.stderr);
    match (expect.succeeds, output.status.success()) {
        (true, false) => problems.push(format!(
            "failed ({}): {}",
            output.status,
            last_lines(&stderr)
        )),
        (false, true) => problems.push("succeeded on bad input".into()),
        _ => {}
    }
    if stderr.contains("panicked") {
        problems.push(format!("panicked: {}", last_lines(&stderr)));
    }
    if strict {
        for needle in &expect.error {
            if !stderr.contains(needle.as_str()) {
                problems.push(format!("stderr lacks '{needle}': {}", last_lines(&stderr)));
            }
        }
    }
    // Acknowledged states: each a STATE of the input, in order; the last one as expected.
    let states = input_states(fixture)?;
    let mut position = 0;
    let mut last = None;
    for line in String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        match serde_json::from_str::<Value>(line) {
            Ok(v) => match states[position..].iter().position(|s| s == &v) {
                Some(p) => {
                    position += p;
                    last = Some(v);
                }
                None => problems.push(format!(
                    "stdout line is not an input STATE in order: {line}"
                )),
            },
            Err(_) => problems.push(format!("stdout line is not JSON: {line}")),
        }
    }
    if last != expect.final_state {
        problems.push(format!(
            "last acknowledged state {} (expected {})",
            last.map_or("none".into(), |v| v.to_string()),
            expect
                .final_state
                .as_ref()
                .map_or("none".into(), Value::to_string)
        ));
    }
    if kind != Kind::None {
        problems.extend(check_tables(query_bin, dir.path(), expect, kind, mode)?);
    }
    Ok(problems)
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

/// Runs SQL through `duckdb-query --scalars`; one result per query, each the first value
/// of the first row as text (`"NULL"` for none) or the error.
fn scalars(query_bin: &Path, db: &str, queries: &[String]) -> Result<Vec<Result<String, String>>> {
    let out = Command::new(query_bin)
        .arg("--scalars")
        .arg(db)
        .args(queries)
        .output()
        .with_context(|| format!("running {}", query_bin.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            query_bin.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let results: Vec<_> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| match serde_json::from_str::<Value>(line) {
            Ok(Value::String(s)) => Ok(s),
            Ok(Value::Null) => Ok("NULL".into()),
            Ok(other) => Err(other
                .get("error")
                .and_then(Value::as_str)
                .map_or_else(|| other.to_string(), str::to_string)),
            Err(e) => Err(format!("unreadable result {line:?}: {e}")),
        })
        .collect();
    if results.len() != queries.len() {
        bail!(
            "{} answered {} of {} queries",
            query_bin.display(),
            results.len(),
            queries.len()
        );
    }
    Ok(results)
}

/// Where each stream's rows are, by the destination's own record of it: DuckDB's
/// `_sdc_streams` table, or the Parquet commit log's directory owners. Streams it does not
/// list (a target that keeps no such record) are looked up by their own name.
fn relations(query_bin: &Path, dir: &Path, kind: Kind) -> Result<Map<String, Value>> {
    Ok(match kind {
        Kind::Duckdb => {
            let db = dir.join("out.duckdb").display().to_string();
            let sql = "SELECT coalesce(json_group_object(stream, table_name)::VARCHAR, '{}') FROM main._sdc_streams".to_string();
            match scalars(query_bin, &db, &[sql])?.pop() {
                Some(Ok(text)) => serde_json::from_str(&text).unwrap_or_default(),
                _ => Map::new(),
            }
        }
        _ => {
            let log = dir.join("out").join(".singer_commit.json");
            let owners = std::fs::read_to_string(log)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
                .and_then(|v| v.get("streams").and_then(Value::as_object).cloned())
                .unwrap_or_default();
            owners
                .into_iter()
                .filter_map(|(dir, stream)| {
                    Some((stream.as_str()?.to_string(), Value::String(dir)))
                })
                .collect()
        }
    })
}

fn check_tables(
    query_bin: &Path,
    dir: &Path,
    expect: &Expectation,
    kind: Kind,
    mode: Mode,
) -> Result<Vec<String>> {
    let db = match kind {
        Kind::Duckdb => {
            let db = dir.join("out.duckdb");
            if !db.exists() {
                return Ok(if expect.tables.is_empty() {
                    vec![]
                } else {
                    vec!["no database file".into()]
                });
            }
            db.display().to_string()
        }
        _ => ":memory:".to_string(),
    };
    let names = relations(query_bin, dir, kind)?;
    let mut problems = Vec::new();
    // Every query of the fixture, with what its answer should be.
    let mut queries: Vec<(String, String, String)> = Vec::new();
    for (stream, table) in &expect.tables {
        let Ok(table) = serde_json::from_value::<TableExpectation>(table.clone()) else {
            problems.push(format!("bad expectation for {stream}"));
            continue;
        };
        let name = names
            .get(stream)
            .and_then(Value::as_str)
            .unwrap_or(stream)
            .replace('"', "\"\"");
        let relation = match kind {
            Kind::Duckdb => format!("main.\"{name}\""),
            _ => format!(
                "read_parquet('{}/out/{name}/**/*.parquet', hive_partitioning = true, union_by_name = true)",
                dir.display()
            ),
        };
        let rows = if mode == Mode::Append {
            table.rows_append.unwrap_or(table.rows)
        } else {
            table.rows
        };
        queries.push((
            stream.clone(),
            format!("SELECT count(*) FROM {relation}"),
            rows.to_string(),
        ));
        for c in &table.checks {
            let applies = match c.mode.as_deref() {
                Some("append") => mode == Mode::Append,
                Some("upsert") => mode == Mode::Upsert,
                _ => true,
            };
            if applies {
                queries.push((
                    stream.clone(),
                    c.sql.replace("{t}", &relation),
                    c.equals.clone(),
                ));
            }
        }
    }
    if queries.is_empty() {
        return Ok(problems);
    }
    let sql: Vec<String> = queries.iter().map(|(_, q, _)| q.clone()).collect();
    for ((stream, sql, want), got) in queries.iter().zip(scalars(query_bin, &db, &sql)?) {
        match got {
            Ok(v) if &v == want => {}
            Ok(v) => problems.push(format!("{stream}: `{sql}` gave {v:?}, expected {want:?}")),
            Err(e) => problems.push(format!("{stream}: `{sql}`: {e}")),
        }
    }
    Ok(problems)
}
