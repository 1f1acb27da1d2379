//! Reading back what the targets wrote, with the bundled DuckDB: a database file, or a
//! Parquet dataset scanned in memory.

use std::path::Path;

pub use duckdb::Connection;
use duckdb::types::Value;

/// Opens a database file read-only.
pub fn open_read_only(db: &Path) -> Connection {
    let config = duckdb::Config::default()
        .access_mode(duckdb::AccessMode::ReadOnly)
        .expect("config");
    Connection::open_with_flags(db, config).unwrap_or_else(|e| panic!("open {}: {e}", db.display()))
}

/// An in-memory database, for scanning Parquet files.
pub fn in_memory() -> Connection {
    Connection::open_in_memory().expect("duckdb")
}

/// Writes the rows of `select` (DuckDB SQL) to a Parquet file, as an SDK tap's batch file.
pub fn write_parquet(path: &Path, select: &str) {
    in_memory()
        .execute_batch(&format!(
            "COPY ({select}) TO '{}' (FORMAT parquet)",
            path.display()
        ))
        .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// The first column of the first row of a query.
pub fn query_one<T: duckdb::types::FromSql>(conn: &Connection, sql: &str) -> T {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The first column of the first row of a query on a database file, as text.
pub fn scalar(db: &Path, sql: &str) -> String {
    text(&query_one::<Value>(&open_read_only(db), sql))
}

/// Every row of a query, each value as text (`NULL` for null).
pub fn rows(conn: &Connection, sql: &str) -> Vec<Vec<String>> {
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut rows = stmt.query([]).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let mut out = Vec::new();
    while let Some(row) = rows.next().expect("row") {
        let n = row.as_ref().column_count();
        out.push(
            (0..n)
                .map(|i| text(&row.get_ref(i).expect("value").to_owned()))
                .collect(),
        );
    }
    out
}

/// A DuckDB value as text, the way the tests compare them.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "NULL".into(),
        Value::Text(s) => s.clone(),
        Value::Boolean(b) => b.to_string(),
        Value::TinyInt(n) => n.to_string(),
        Value::SmallInt(n) => n.to_string(),
        Value::Int(n) => n.to_string(),
        Value::BigInt(n) => n.to_string(),
        Value::HugeInt(n) => n.to_string(),
        Value::UBigInt(n) => n.to_string(),
        Value::Double(f) => f.to_string(),
        other => format!("{other:?}"),
    }
}

/// The SQL relation of a Parquet dataset directory: every file under it, Hive partitions
/// as columns, files of different schemas united by column name.
pub fn parquet_scan(dir: &Path) -> String {
    format!(
        "read_parquet('{}/**/*.parquet', hive_partitioning = true, union_by_name = true)",
        dir.display()
    )
}
