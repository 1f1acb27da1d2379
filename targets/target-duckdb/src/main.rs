//! `target-duckdb`: load a Singer stream into a DuckDB database file.

fn main() -> std::process::ExitCode {
    singer_target::main(target_duckdb::about(), target_duckdb::DuckDbSink::open)
}
