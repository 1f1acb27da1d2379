//! `singer-bench`: inputs and baselines for `make bench`.
//!
//! * `generate` writes a deterministic Singer stream shaped like Jira issues (~1 KB
//!   records: ids, date-times with `+0000` offsets, nested objects, arrays of strings,
//!   nullable fields, unicode text with quotes and newlines), a STATE every 10,000
//!   records, optionally repeating a share of the keys with changed values (an upsert
//!   load), and the same records as plain NDJSON for DuckDB's own `read_ndjson`.
//! * `parse` parses every line of a file with serde_json and reports records/s: the JSON
//!   ceiling the targets are compared with.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde_json::{Value, json};

#[derive(Parser)]
#[command(name = "singer-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write a Jira-like Singer stream (and the bare records as NDJSON).
    Generate {
        /// Number of RECORD messages.
        #[arg(long, default_value_t = 100_000)]
        records: u64,
        /// Share of records that repeat an earlier key with changed values (0 to 1).
        #[arg(long, default_value_t = 0.0)]
        repeat_share: f64,
        /// RECORDs between STATE messages.
        #[arg(long, default_value_t = 10_000)]
        state_every: u64,
        /// The Singer stream.
        #[arg(long)]
        out: PathBuf,
        /// The same records, one JSON object per line.
        #[arg(long)]
        records_out: Option<PathBuf>,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Parse each line with serde_json; print records per second.
    Parse {
        /// The file.
        file: PathBuf,
    },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Command::Generate {
            records,
            repeat_share,
            state_every,
            out,
            records_out,
            seed,
        } => generate(
            records,
            repeat_share,
            state_every.max(1),
            &out,
            records_out.as_ref(),
            seed,
        ),
        Command::Parse { file } => parse(&file),
    }
}

const STATUSES: [(&str, &str, i64, &str); 4] = [
    ("1", "To Do", 2, "new"),
    ("3", "In Progress", 4, "indeterminate"),
    ("10001", "In Review", 4, "indeterminate"),
    ("5", "Done", 3, "done"),
];
const PROJECTS: [&str; 4] = ["ALPHA", "BETA", "GAMMA", "DELTA"];
const PRIORITIES: [&str; 5] = ["Highest", "High", "Medium", "Low", "Lowest"];
const WORDS: [&str; 16] = [
    "login",
    "fails",
    "when",
    "the",
    "token",
    "expires",
    "über",
    "naïve",
    "日本",
    "résumé",
    "\"quoted\"",
    "cache",
    "timeout",
    "report",
    "O'Brien",
    "🚀",
];

fn schema() -> Value {
    let s = json!({"type": ["null", "string"]});
    let dt = json!({"type": ["null", "string"], "format": "date-time"});
    let user = json!({"type": ["null", "object"], "properties": {
        "accountId": s, "displayName": s, "emailAddress": s, "active": {"type": ["null", "boolean"]}, "timeZone": s}});
    json!({"type": "object", "properties": {
        "id": {"type": "string"}, "key": {"type": "string"}, "self": s,
        "created": dt, "updated": dt,
        "fields": {"type": ["null", "object"], "properties": {
            "summary": s, "description": s,
            "status": {"type": ["null", "object"], "properties": {"id": s, "name": s,
                "statusCategory": {"type": ["null", "object"], "properties": {"id": {"type": ["null", "integer"]}, "key": s}}}},
            "priority": {"type": ["null", "object"], "properties": {"id": s, "name": s}},
            "project": {"type": ["null", "object"], "properties": {"id": s, "key": s, "name": s}},
            "assignee": user.clone(), "reporter": user,
            "labels": {"type": ["null", "array"], "items": {"type": "string"}},
            "components": {"type": ["null", "array"], "items": {"type": "object", "properties": {"id": s, "name": s}}},
            "timespent": {"type": ["null", "integer"]},
            "storyPoints": {"type": ["null", "number"]},
            "resolutiondate": dt,
            "duedate": {"type": ["null", "string"], "format": "date"}}}}})
}

fn record(rng: &mut fastrand::Rng, n: u64, revision: u64) -> Value {
    let project = PROJECTS[(n % 4) as usize];
    let (sid, sname, cid, ckey) = STATUSES[((n + revision) % 4) as usize];
    let created = 1_704_067_200 + (n as i64) * 37;
    let updated = created + 3_600 + (revision as i64) * 86_400 + rng.i64(0..3_600);
    let ts = |t: i64| {
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400);
        let (y, m, d) = civil(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}+0000",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            rng_ms(t)
        )
    };
    let words = |rng: &mut fastrand::Rng, k: usize| -> String {
        (0..k)
            .map(|_| WORDS[rng.usize(..WORDS.len())])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let user = |rng: &mut fastrand::Rng| {
        let u = rng.u32(1..500);
        json!({"accountId": format!("5b10a2844c20165700ede{u:03}"), "displayName": format!("User {u} {}", words(rng, 1)),
            "emailAddress": if u.is_multiple_of(3) { Value::Null } else { json!(format!("user{u}@example.com")) },
            "active": !u.is_multiple_of(7), "timeZone": "Europe/Berlin"})
    };
    json!({
        "id": format!("{}", 10_000 + n), "key": format!("{project}-{n}"),
        "self": format!("https://acme.atlassian.net/rest/api/3/issue/{}", 10_000 + n),
        "created": ts(created), "updated": ts(updated),
        "fields": {
            "summary": format!("{} (rev {revision})", words(rng, 6)),
            "description": format!("{}\nSteps:\n1. {}\n2. {}\n\"Expected\": {}", words(rng, 20), words(rng, 8), words(rng, 8), words(rng, 10)),
            "status": {"id": sid, "name": sname, "statusCategory": {"id": cid, "key": ckey}},
            "priority": {"id": format!("{}", 1 + n % 5), "name": PRIORITIES[(n % 5) as usize]},
            "project": {"id": format!("{}", 10_000 + n % 4), "key": project, "name": format!("Project {project}")},
            "assignee": if n.is_multiple_of(5) { Value::Null } else { user(rng) },
            "reporter": user(rng),
            "labels": (0..rng.usize(0..4)).map(|_| words(rng, 1)).collect::<Vec<_>>(),
            "components": (0..rng.usize(0..3)).map(|i| json!({"id": format!("{}", 100 + i), "name": words(rng, 2)})).collect::<Vec<_>>(),
            "timespent": if n.is_multiple_of(3) { Value::Null } else { json!(rng.i64(60..100_000)) },
            "storyPoints": if n.is_multiple_of(4) { Value::Null } else { json!(rng.u8(1..13) as f64 / 2.0) },
            "resolutiondate": if sname == "Done" { json!(ts(updated)) } else { Value::Null },
            "duedate": if n.is_multiple_of(2) { Value::Null } else { json!("2024-12-31") }
        }
    })
}

fn rng_ms(t: i64) -> i64 {
    t.rem_euclid(1000)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn generate(
    records: u64,
    repeat_share: f64,
    state_every: u64,
    out: &PathBuf,
    records_out: Option<&PathBuf>,
    seed: u64,
) -> Result<()> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut w = BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(out).with_context(|| out.display().to_string())?,
    );
    let mut r = match records_out {
        Some(p) => Some(BufWriter::with_capacity(1 << 20, std::fs::File::create(p)?)),
        None => None,
    };
    writeln!(
        w,
        "{}",
        json!({"type": "SCHEMA", "stream": "issues", "schema": schema(), "key_properties": ["id"], "bookmark_properties": ["updated"]})
    )?;
    let mut next_new = 0u64;
    for i in 1..=records {
        let (n, revision) = if next_new > 10 && rng.f64() < repeat_share {
            (rng.u64(..next_new), 1 + i % 7)
        } else {
            next_new += 1;
            (next_new - 1, 0)
        };
        let rec = record(&mut rng, n, revision);
        writeln!(
            w,
            "{}",
            json!({"type": "RECORD", "stream": "issues", "record": rec, "time_extracted": "2024-06-01T00:00:00Z"})
        )?;
        if let Some(r) = r.as_mut() {
            writeln!(r, "{rec}")?;
        }
        if i % state_every == 0 || i == records {
            writeln!(
                w,
                "{}",
                json!({"type": "STATE", "value": {"bookmarks": {"issues": {"replication_key": "updated", "replication_key_value": i}}}})
            )?;
        }
    }
    w.flush()?;
    if let Some(mut r) = r {
        r.flush()?;
    }
    Ok(())
}

fn parse(file: &PathBuf) -> Result<()> {
    let started = Instant::now();
    let mut n = 0u64;
    let mut bytes = 0u64;
    for line in BufReader::with_capacity(1 << 20, std::fs::File::open(file)?).lines() {
        let line = line?;
        bytes += line.len() as u64;
        let v: Value = serde_json::from_str(&line)?;
        if v.get("type").is_some_and(|t| t == "RECORD") {
            n += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{{\"records\": {n}, \"seconds\": {secs:.3}, \"records_per_second\": {:.0}, \"mb_per_second\": {:.1}}}",
        n as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}
