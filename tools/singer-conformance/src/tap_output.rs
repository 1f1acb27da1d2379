//! `--tap-output`: what a tap wrote, checked against the Singer spec and the SDK's
//! conventions, the way a strict target would read it.
//!
//! * every line is a Singer message (a JSON object with a known `type` and its fields);
//! * a stream's SCHEMA comes before its RECORDs and ACTIVATE_VERSIONs; its
//!   `key_properties` and `bookmark_properties` are among its properties;
//! * every RECORD validates against its stream's schema and has its key properties;
//! * the output ends with a STATE once any STATE was written (a tap's final state covers
//!   everything it wrote).
//!
//! A summary line `N passed, M failed` follows, counting streams.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::Path;

use anyhow::{Context, Result};
use singer_core::message::{Message, MessageReader};
use singer_target::{SchemaOptions, StreamSchema};

/// Problems are capped per stream so a systematic error does not flood the report.
const MAX_PROBLEMS_PER_STREAM: usize = 10;

#[derive(Default)]
struct StreamReport {
    schema: Option<StreamSchema>,
    records: u64,
    problems: Vec<String>,
}

impl StreamReport {
    fn problem(&mut self, text: String) {
        if self.problems.len() < MAX_PROBLEMS_PER_STREAM {
            self.problems.push(text);
        }
    }
}

/// Checks the messages in `path` (`-`: stdin), prints a report; `true` when all is well.
pub fn check_file(path: &Path) -> Result<bool> {
    let report = if path == Path::new("-") {
        check(std::io::stdin().lock())
    } else {
        let file = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
        check(std::io::BufReader::new(file))
    };
    let mut failed = 0;
    for line in &report.general {
        println!("FAIL {line}");
    }
    for (stream, s) in &report.streams {
        if s.problems.is_empty() {
            println!("PASS {stream}: {} records", s.records);
        } else {
            failed += 1;
            println!("FAIL {stream}: {} records", s.records);
            for p in &s.problems {
                println!("     - {p}");
            }
        }
    }
    let passed = report.streams.len() - failed;
    failed += report.general.len();
    println!("\n{passed} passed, {failed} failed");
    Ok(failed == 0)
}

struct Report {
    streams: BTreeMap<String, StreamReport>,
    /// Problems that concern no one stream.
    general: Vec<String>,
}

fn check(input: impl BufRead) -> Report {
    let mut streams: BTreeMap<String, StreamReport> = BTreeMap::new();
    let mut general = Vec::new();
    let mut states = 0u64;
    let mut last_is_state = false;
    let mut reader = MessageReader::new(input);
    loop {
        let (line, message) = match reader.next_message() {
            Ok(Some(m)) => m,
            Ok(None) => break,
            Err(e) => {
                let bad_line = matches!(e, singer_core::Error::Parse(_));
                general.push(e.to_string());
                // A line that is not a message says nothing about what follows; go on. A
                // failure to read ends the check.
                if bad_line {
                    continue;
                }
                break;
            }
        };
        last_is_state = matches!(message, Message::State(_));
        match message {
            Message::Schema(m) => {
                let report = streams.entry(m.stream.clone()).or_default();
                let options = SchemaOptions {
                    flattening: None,
                    validate_records: true,
                };
                match StreamSchema::with_options(
                    &m.stream,
                    &m.schema,
                    m.key_properties.clone(),
                    &options,
                ) {
                    Ok(schema) => {
                        for b in m.bookmark_properties.iter().flatten() {
                            if !schema.columns().iter().any(|c| &c.name == b) {
                                report.problem(format!(
                                    "line {line}: bookmark property '{b}' is not among the schema's properties"
                                ));
                            }
                        }
                        report.schema = Some(schema);
                    }
                    Err(e) => report.problem(format!("line {line}: {e}")),
                }
            }
            Message::Record(m) => {
                let report = streams.entry(m.stream.clone()).or_default();
                report.records += 1;
                match &report.schema {
                    None => {
                        report.problem(format!("line {line}: RECORD before the stream's SCHEMA"))
                    }
                    Some(schema) => {
                        if let Err(e) = schema.prepare(m.record, line) {
                            report.problem(e.to_string());
                        }
                    }
                }
            }
            Message::ActivateVersion(m) => {
                let report = streams.entry(m.stream.clone()).or_default();
                if report.schema.is_none() {
                    report.problem(format!(
                        "line {line}: ACTIVATE_VERSION before the stream's SCHEMA"
                    ));
                }
            }
            Message::Batch(m) => {
                let report = streams.entry(m.stream.clone()).or_default();
                if report.schema.is_none() {
                    report.problem(format!("line {line}: BATCH before the stream's SCHEMA"));
                }
            }
            Message::State(_) => states += 1,
        }
    }
    if states > 0 && !last_is_state {
        general.push("the output does not end with a STATE: what came after the last one is not covered by any state".into());
    }
    Report { streams, general }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(input: &str) -> Vec<String> {
        let r = check(input.as_bytes());
        r.general
            .into_iter()
            .chain(r.streams.into_values().flat_map(|s| s.problems))
            .collect()
    }

    #[test]
    fn good_output_passes() {
        let out = r#"{"type":"SCHEMA","stream":"t","schema":{"properties":{"id":{"type":"integer"},"u":{"type":"string","format":"date-time"}}},"key_properties":["id"],"bookmark_properties":["u"]}
{"type":"RECORD","stream":"t","record":{"id":1,"u":"2024-01-01T00:00:00Z"}}
{"type":"STATE","value":{"bookmarks":{"t":{"replication_key_value":"2024-01-01T00:00:00Z"}}}}
"#;
        assert_eq!(problems(out), Vec::<String>::new());
    }

    #[test]
    fn each_violation_is_named() {
        let out = r#"{"type":"RECORD","stream":"a","record":{"id":1}}
{"type":"SCHEMA","stream":"t","schema":{"properties":{"id":{"type":"integer"}}},"key_properties":["id"],"bookmark_properties":["nope"]}
{"type":"RECORD","stream":"t","record":{"id":"x"}}
{"type":"RECORD","stream":"t","record":{}}
{"type":"STATE","value":{}}
{"type":"RECORD","stream":"t","record":{"id":2}}
not json
"#;
        let p = problems(out).join("\n");
        assert!(p.contains("RECORD before the stream's SCHEMA"), "{p}");
        assert!(p.contains("bookmark property 'nope'"), "{p}");
        assert!(p.contains("line 3, field 'id'"), "{p}");
        assert!(p.contains("key property 'id' is missing"), "{p}");
        assert!(p.contains("line 7"), "{p}");
        assert!(p.contains("does not end with a STATE"), "{p}");
    }
}
