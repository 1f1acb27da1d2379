//! Logging to stderr and Singer METRIC lines.
//!
//! Everything a tap or target says about itself goes to stderr through `tracing`, so stdout
//! carries only Singer messages (taps) or states (targets). The format is human-readable by
//! default and JSON lines when `SINGER_LOG_FORMAT=json` (or `--log-format json`). The level
//! comes from `RUST_LOG`, else `<PLUGIN>_LOGLEVEL`, else `LOGLEVEL` (the SDK's variables),
//! else `info`.
//!
//! Metrics are logged the way singer-python and the Meltano SDK log them, so existing log
//! tooling keeps working:
//!
//! ```text
//! METRIC: {"type":"counter","metric":"record_count","value":100,"tags":{"stream":"issues"}}
//! ```

use serde_json::{Map, Value, json};
use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Starts logging to stderr for the plugin `name` (used for the `<PLUGIN>_LOGLEVEL`
/// variable). Calling it twice is harmless.
pub fn init(name: &str, format: Option<LogFormat>) {
    let format = format.unwrap_or_else(|| match std::env::var("SINGER_LOG_FORMAT") {
        Ok(v) if v.eq_ignore_ascii_case("json") => LogFormat::Json,
        _ => LogFormat::Text,
    });
    let level = std::env::var(format!("{}_LOGLEVEL", env_prefix(name)))
        .or_else(|_| std::env::var("LOGLEVEL"))
        .map(|l| l.to_lowercase())
        .unwrap_or_else(|_| "info".into());
    // delta-rs and its kernel log every snapshot and scan at info, and a table that does
    // not exist yet as an error; their failures reach the plugin as results, reported with
    // the stream's context, so the log keeps only delta-rs's warnings unless asked for more.
    let quiet = if matches!(level.as_str(), "debug" | "trace") {
        String::new()
    } else {
        ",buoyant_kernel=off,buoyant_kernel_engine=off,deltalake_core=warn".to_string()
    };
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level}{quiet}")));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// `tap-jira` → `TAP_JIRA`: the prefix of the plugin's environment variables.
pub fn env_prefix(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

/// Logs a counter metric.
pub fn metric_counter(metric: &str, value: u64, tags: &[(&str, &str)]) {
    let tags: Map<String, Value> = tags
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    emit(json!({"type": "counter", "metric": metric, "value": value, "tags": tags}));
}

/// Logs a timer metric (seconds).
pub fn metric_timer(metric: &str, seconds: f64, tags: Map<String, Value>) {
    let value = (seconds * 1_000_000.0).round() / 1_000_000.0;
    emit(json!({"type": "timer", "metric": metric, "value": value, "tags": tags}));
}

fn emit(point: Value) {
    tracing::info!(target: "singer.metrics", "METRIC: {point}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn env_prefix_is_upper_snake() {
        assert_eq!(super::env_prefix("target-duckdb"), "TARGET_DUCKDB");
    }
}
