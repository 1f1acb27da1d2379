//! `duckdb-query [--write] DB SQL`: run SQL against a DuckDB file (`:memory:` for none)
//! and print the result as a table. Read-only unless `--write`.
//!
//! The demo and the tests use it to look at what target-duckdb loaded, with the same
//! bundled DuckDB (Debian ships no DuckDB command line).

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let write = args.first().is_some_and(|a| a == "--write");
    if write {
        args.remove(0);
    }
    let [db, sql] = args.as_slice() else {
        eprintln!("usage: duckdb-query [--write] DATABASE SQL");
        return ExitCode::from(2);
    };
    match run(db, sql, write) {
        Ok(table) => {
            println!("{table}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("duckdb-query: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(db: &str, sql: &str, write: bool) -> Result<String, Box<dyn std::error::Error>> {
    let conn = if db == ":memory:" {
        duckdb::Connection::open_in_memory()?
    } else {
        let mode = if write {
            duckdb::AccessMode::ReadWrite
        } else {
            duckdb::AccessMode::ReadOnly
        };
        duckdb::Connection::open_with_flags(db, duckdb::Config::default().access_mode(mode)?)?
    };
    let mut stmt = conn.prepare(sql)?;
    let batches: Vec<_> = stmt.query_arrow([])?.collect();
    Ok(arrow::util::pretty::pretty_format_batches(&batches)?.to_string())
}
