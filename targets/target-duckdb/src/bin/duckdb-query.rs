//! `duckdb-query [--write] DB SQL`: run SQL against a DuckDB file (`:memory:` for none)
//! and print the result as a table. Read-only unless `--write`.
//!
//! `duckdb-query --scalars DB SQL...` runs each query and prints one JSON line per query:
//! the first column of its first row as text (`null` for SQL NULL or no row), or
//! `{"error": "..."}`. Tools that judge a load without linking DuckDB themselves (the
//! conformance suite) read that.
//!
//! The demo and the tests use it to look at what target-duckdb loaded, with the same
//! bundled DuckDB (Debian ships no DuckDB command line).

use std::process::ExitCode;

use duckdb::Connection;
use duckdb::types::Value;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut flag = |name: &str| {
        let found = args.first().is_some_and(|a| a == name);
        if found {
            args.remove(0);
        }
        found
    };
    let write = flag("--write");
    let scalars = flag("--scalars");
    let result = match (scalars, args.as_slice()) {
        (true, [db, queries @ ..]) if !queries.is_empty() => {
            open(db, write).map(|conn| print_scalars(&conn, queries))
        }
        (false, [db, sql]) => open(db, write).and_then(|conn| table(&conn, sql)).map(|t| {
            println!("{t}");
        }),
        _ => {
            eprintln!(
                "usage: duckdb-query [--write] DATABASE SQL\n       duckdb-query --scalars DATABASE SQL..."
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duckdb-query: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn open(db: &str, write: bool) -> Result<Connection> {
    if db == ":memory:" {
        return Ok(Connection::open_in_memory()?);
    }
    let mode = if write {
        duckdb::AccessMode::ReadWrite
    } else {
        duckdb::AccessMode::ReadOnly
    };
    Ok(Connection::open_with_flags(
        db,
        duckdb::Config::default().access_mode(mode)?,
    )?)
}

fn table(conn: &Connection, sql: &str) -> Result<String> {
    let mut stmt = conn.prepare(sql)?;
    let batches: Vec<_> = stmt.query_arrow([])?.collect();
    Ok(arrow::util::pretty::pretty_format_batches(&batches)?.to_string())
}

fn print_scalars(conn: &Connection, queries: &[String]) {
    for sql in queries {
        let line = match scalar(conn, sql) {
            Ok(value) => serde_json::Value::from(value),
            Err(e) => serde_json::json!({"error": e.to_string()}),
        };
        println!("{line}");
    }
}

/// The first column of the first row, as text; `None` for NULL or no row.
fn scalar(conn: &Connection, sql: &str) -> duckdb::Result<Option<String>> {
    let value = match conn.query_row(sql, [], |r| r.get::<_, Value>(0)) {
        Err(duckdb::Error::QueryReturnedNoRows) => return Ok(None),
        other => other?,
    };
    Ok(match value {
        Value::Null => None,
        Value::Text(s) => Some(s),
        Value::Boolean(b) => Some(b.to_string()),
        Value::TinyInt(n) => Some(n.to_string()),
        Value::SmallInt(n) => Some(n.to_string()),
        Value::Int(n) => Some(n.to_string()),
        Value::BigInt(n) => Some(n.to_string()),
        Value::HugeInt(n) => Some(n.to_string()),
        Value::UBigInt(n) => Some(n.to_string()),
        Value::Double(f) => Some(f.to_string()),
        other => Some(format!("{other:?}")),
    })
}
