//! `duckdb-query DB SQL`: run SQL against a DuckDB file and print the result as a table.
//!
//! The demo and the tests use it to look at what target-duckdb loaded, with the same
//! bundled DuckDB (Debian ships no DuckDB command line).

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [db, sql] = args.as_slice() else {
        eprintln!("usage: duckdb-query DATABASE SQL");
        return ExitCode::from(2);
    };
    match run(db, sql) {
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

fn run(db: &str, sql: &str) -> Result<String, Box<dyn std::error::Error>> {
    let config = duckdb::Config::default().access_mode(duckdb::AccessMode::ReadOnly)?;
    let conn = duckdb::Connection::open_with_flags(db, config)?;
    let mut stmt = conn.prepare(sql)?;
    let batches: Vec<_> = stmt.query_arrow([])?.collect();
    Ok(arrow::util::pretty::pretty_format_batches(&batches)?.to_string())
}
