//! `singer-replay`: reproduce a load without the source.
//!
//! ```text
//! tap-jira --config c.json | singer-replay capture jira.singer | target-duckdb --config t.json
//! singer-replay play jira.singer | target-parquet --config p.json
//! singer-replay play jira.singer --from-state state.json --rate 5000 | target-duckdb --config t.json
//! ```
//!
//! `capture` copies stdin to stdout and to a file, line by line, so a pipeline behaves as it
//! would without it. `play` writes a captured file to stdout; `--from-state` starts right
//! after the STATE equal to the given state (the SCHEMA messages before it are repeated, so
//! the target knows every stream), as an orchestrator resuming from that state would;
//! `--rate` caps the records per second, to reproduce a slow tap.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use serde_json::Value;
use singer_core::message::{Message, MessageReader};
use singer_core::state::State;

#[derive(Parser)]
#[command(
    name = "singer-replay",
    version,
    about = "Capture and replay Singer streams"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Copy stdin to stdout and to FILE.
    Capture {
        /// The capture file (created or truncated).
        file: PathBuf,
    },
    /// Write a captured stream to stdout.
    Play {
        /// The capture file.
        file: PathBuf,
        /// Start after the STATE equal to this state file's content.
        #[arg(long, value_name = "STATE_FILE")]
        from_state: Option<PathBuf>,
        /// At most this many records per second.
        #[arg(long, value_name = "RECORDS_PER_SECOND")]
        rate: Option<f64>,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("singer-replay: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Capture { file } => capture(&file),
        Command::Play {
            file,
            from_state,
            rate,
        } => play(&file, from_state.as_deref(), rate),
    }
}

fn capture(file: &std::path::Path) -> Result<()> {
    let mut copy = BufWriter::new(
        std::fs::File::create(file).with_context(|| format!("creating {}", file.display()))?,
    );
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut input = std::io::stdin().lock();
    let mut line = Vec::new();
    loop {
        line.clear();
        if input
            .read_until(b'\n', &mut line)
            .context("reading stdin")?
            == 0
        {
            break;
        }
        copy.write_all(&line).context("writing the capture")?;
        // A closed stdout (the target stopped) ends the capture, keeping what was read.
        if out.write_all(&line).and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    copy.flush().context("writing the capture")?;
    copy.get_ref().sync_all().context("syncing the capture")?;
    Ok(())
}

/// The line number after which to start: the last STATE equal to `state`.
fn start_after(file: &std::path::Path, state: &State) -> Result<u64> {
    let want = state.to_value();
    let mut reader = MessageReader::new(BufReader::new(std::fs::File::open(file)?));
    let mut found = None;
    while let Some((line, message)) = reader.next_message()? {
        if let Message::State(s) = message
            && State::from_value(s.value)
                .map(|v| v.to_value())
                .ok()
                .as_ref()
                == Some(&want)
        {
            found = Some(line);
        }
    }
    found.with_context(|| format!("no STATE in {} equals the given state", file.display()))
}

fn play(
    file: &std::path::Path,
    from_state: Option<&std::path::Path>,
    rate: Option<f64>,
) -> Result<()> {
    if rate.is_some_and(|r| r <= 0.0 || r.is_nan()) {
        bail!("--rate must be positive");
    }
    let skip_to = match from_state {
        Some(path) => start_after(file, &State::from_file(path)?)?,
        None => 0,
    };
    let mut reader = MessageReader::new(BufReader::new(
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?,
    ));
    let stdout = std::io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    let started = Instant::now();
    let mut records = 0u64;
    while let Some((number, bytes)) = reader.next_line()? {
        let is_schema = || {
            serde_json::from_slice::<Value>(bytes)
                .ok()
                .is_some_and(|v| v.get("type").and_then(Value::as_str) == Some("SCHEMA"))
        };
        if number <= skip_to && !is_schema() {
            continue;
        }
        if let Some(rate) = rate
            && bytes.windows(8).any(|w| w == b"\"RECORD\"")
        {
            records += 1;
            let due = Duration::from_secs_f64(records as f64 / rate);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                out.flush()?;
                std::thread::sleep(wait);
            }
        }
        out.write_all(bytes)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_matching_state() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("c.singer");
        std::fs::write(
            &file,
            "{\"type\":\"SCHEMA\",\"stream\":\"s\",\"schema\":{\"properties\":{}},\"key_properties\":[]}\n\
             {\"type\":\"STATE\",\"value\":{\"bookmarks\":{\"s\":{\"replication_key_value\":1}}}}\n\
             {\"type\":\"STATE\",\"value\":{\"bookmarks\":{\"s\":{\"replication_key_value\":2}}}}\n",
        )
        .expect("write");
        let state = State::from_value(
            serde_json::json!({"bookmarks": {"s": {"replication_key_value": 2}}}),
        )
        .expect("state");
        assert_eq!(start_after(&file, &state).expect("found"), 3);
        let missing = State::from_value(
            serde_json::json!({"bookmarks": {"s": {"replication_key_value": 9}}}),
        )
        .expect("state");
        assert!(start_after(&file, &missing).is_err());
    }
}
