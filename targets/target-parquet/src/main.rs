//! `target-parquet`: write a Singer stream as Parquet datasets.

fn main() -> std::process::ExitCode {
    singer_target::main(target_parquet::about(), target_parquet::ParquetSink::open)
}
