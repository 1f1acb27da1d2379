//! `singer-conformance`: judge any Singer target with the fixture streams.
//!
//! ```text
//! singer-conformance --target path/to/target-duckdb
//! singer-conformance --target path/to/other-target --config-template my.json --kind none
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
//! dataset). `--mode append` expects what an append-only destination holds.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, ValueEnum};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Parser)]
#[command(
    name = "singer-conformance",
    version,
    about = "Run the fixture streams through a Singer target"
)]
struct Cli {
    /// The target binary.
    #[arg(long)]
    target: PathBuf,
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
    let name = cli
        .target
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
    let strict = cli
        .strict_errors
        .unwrap_or_else(|| built_with_singer_rs(&cli.target));
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
        let problems = check(&cli.target, fixture, &expect, &template, kind, mode, strict)?;
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
        cli.target.display()
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

fn check(
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
        problems.extend(check_tables(dir.path(), expect, kind, mode));
    }
    Ok(problems)
}

fn last_lines(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(3)..].join(" | ")
}

fn check_tables(dir: &Path, expect: &Expectation, kind: Kind, mode: Mode) -> Vec<String> {
    let conn = match kind {
        Kind::Duckdb => {
            let db = dir.join("out.duckdb");
            if !db.exists() {
                return if expect.tables.is_empty() {
                    vec![]
                } else {
                    vec!["no database file".into()]
                };
            }
            duckdb::Config::default()
                .access_mode(duckdb::AccessMode::ReadOnly)
                .and_then(|c| duckdb::Connection::open_with_flags(&db, c))
        }
        _ => duckdb::Connection::open_in_memory(),
    };
    let conn = match conn {
        Ok(c) => c,
        Err(e) => return vec![format!("cannot open the destination: {e}")],
    };
    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for (stream, table) in &expect.tables {
        let Ok(table) = serde_json::from_value::<TableExpectation>(table.clone()) else {
            problems.push(format!("bad expectation for {stream}"));
            continue;
        };
        seen.insert(stream.clone());
        let relation = match kind {
            Kind::Duckdb => format!("main.\"{}\"", target_duckdb::table_name(stream)),
            _ => format!(
                "read_parquet('{}/out/{}/**/*.parquet', hive_partitioning = true, union_by_name = true)",
                dir.display(),
                target_parquet::dataset_dir_name(stream)
            ),
        };
        let rows = if mode == Mode::Append {
            table.rows_append.unwrap_or(table.rows)
        } else {
            table.rows
        };
        match scalar(&conn, &format!("SELECT count(*) FROM {relation}")) {
            Ok(n) if n == rows.to_string() => {}
            Ok(n) => problems.push(format!("{stream}: {n} rows, expected {rows}")),
            Err(e) => problems.push(format!("{stream}: {e}")),
        }
        for c in &table.checks {
            let applies = match c.mode.as_deref() {
                Some("append") => mode == Mode::Append,
                Some("upsert") => mode == Mode::Upsert,
                _ => true,
            };
            if !applies {
                continue;
            }
            let sql = c.sql.replace("{t}", &relation);
            match scalar(&conn, &sql) {
                Ok(v) if v == c.equals => {}
                Ok(v) => problems.push(format!(
                    "{stream}: `{}` gave {v:?}, expected {:?}",
                    c.sql, c.equals
                )),
                Err(e) => problems.push(format!("{stream}: `{}`: {e}", c.sql)),
            }
        }
    }
    problems
}

fn scalar(conn: &duckdb::Connection, sql: &str) -> Result<String> {
    let value: duckdb::types::Value = conn.query_row(sql, [], |r| r.get(0))?;
    Ok(match value {
        duckdb::types::Value::Null => "NULL".into(),
        duckdb::types::Value::Text(s) => s,
        duckdb::types::Value::Boolean(b) => b.to_string(),
        duckdb::types::Value::BigInt(n) => n.to_string(),
        duckdb::types::Value::Int(n) => n.to_string(),
        duckdb::types::Value::HugeInt(n) => n.to_string(),
        duckdb::types::Value::UBigInt(n) => n.to_string(),
        duckdb::types::Value::Double(f) => f.to_string(),
        other => format!("{other:?}"),
    })
}
