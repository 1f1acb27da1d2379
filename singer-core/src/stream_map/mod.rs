//! Stream maps: the Meltano SDK's `stream_maps` and `stream_map_config` settings, for taps
//! (on what they write) and targets (on what they read).
//!
//! ```yaml
//! stream_maps:
//!   users:
//!     email_hash: md5(config['salt'] + email)   # a computed property
//!     email: null                                # removed
//!     __filter__: "'@example.com' not in email"  # records kept where it holds
//!   customers:
//!     __alias__: clients                          # renamed stream
//!   users_by_domain:
//!     __source__: users                           # a second stream from one source
//!     __else__: null                              # only the named properties (and keys)
//!     domain: email.split('@')[-1]
//!   logs: null                                   # stream dropped
//!   "*_archive": __NULL__                         # globs match as fnmatch does
//! stream_map_config:
//!   salt: s3cr3t
//! ```
//!
//! The SDK's semantics, from its `mapper.py`: a map keyed by the stream's name (exactly or
//! by glob; the last matching key wins) replaces the stream's output; `__source__` maps add
//! streams; a top-level `__else__: null` drops streams no key names. Expressions see the
//! original record. Where the SDK is known to hurt, this does better: computed types are
//! inferred from the expression (`md5(...)` is a string, `x > 1` a boolean), `__else__:
//! null` keeps the key properties in the schema, `md5(None)` is `None`, and an unknown
//! function is an error at start-up instead of on the first record. [`expr`] documents the
//! supported subset of Python.

pub mod expr;
mod python;

use std::collections::HashMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::message::{ActivateVersionMessage, Message, Record, RecordMessage, SchemaMessage};
pub use expr::{EvalError, ExprProblem, Expression, Scope};

/// The SDK's spelling of "remove" where `null` is awkward (YAML, env vars).
const NULL_STRING: &str = "__NULL__";

/// The settings of the `stream-maps` capability, flattened into tap and target settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default)]
pub struct MapSettings {
    /// Stream maps, as in the Meltano SDK: per stream, `__alias__`, `__filter__`,
    /// `__source__`, `__else__`, `__key_properties__`, and properties set to an expression
    /// or to null; a stream set to null is dropped.
    #[schemars(title = "Stream Maps")]
    pub stream_maps: Option<Map<String, Value>>,
    /// Values expressions can read as `config['...']`.
    #[schemars(title = "User Stream Map Configuration")]
    pub stream_map_config: Option<Map<String, Value>>,
    /// The SDK's Faker settings; Faker is not supported here, so setting it is an error.
    #[schemars(title = "Faker Configuration")]
    pub faker_config: Option<Map<String, Value>>,
}

/// A stream map that cannot be used, found at start-up or when its stream's SCHEMA arrives.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MapError {
    /// A setting of the wrong shape.
    #[error("stream_maps: {0}")]
    Config(String),
    /// An expression outside the supported subset, or not Python.
    #[error("stream_maps: stream '{stream}', {property} '{expression}': {problem}")]
    Expression {
        /// The stream map's key.
        stream: String,
        /// The property, or `__filter__` / `__alias__`.
        property: String,
        /// The expression as written.
        expression: String,
        /// Where and what.
        problem: ExprProblem,
    },
    /// An expression that failed on a record.
    #[error(transparent)]
    Eval(Box<RecordFailure>),
}

/// An expression that failed on a record: where, and Python's words.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "stream '{stream}': stream map '{map}', {property} '{expression}' failed on record {record}: {error}"
)]
pub struct RecordFailure {
    /// The source stream.
    pub stream: String,
    /// The stream map's key.
    pub map: String,
    /// The property, or `__filter__`.
    pub property: String,
    /// The expression as written.
    pub expression: String,
    /// The record's key properties, to find it.
    pub record: String,
    /// Python's words.
    pub error: EvalError,
}

/// What one stream-map key says.
#[derive(Debug, Clone)]
struct Entry {
    key: String,
    /// The stream(s) it reads: its key, or its `__source__`, as an fnmatch pattern.
    source: String,
    /// Whether it replaces the source's own output (no `__source__`).
    primary: bool,
    /// `__alias__`, as written.
    alias: Option<String>,
    plan: Plan,
}

#[derive(Debug, Clone)]
enum Plan {
    Remove,
    Custom(Arc<Custom>),
}

#[derive(Debug)]
struct Custom {
    filter: Option<Expression>,
    /// `__key_properties__`: `Some(None)` for an explicit null (no keys).
    key_properties: Option<Option<Vec<String>>>,
    include_by_default: bool,
    properties: Vec<(String, Option<Expression>)>,
}

/// One output of a source stream.
#[derive(Debug, Clone)]
enum Output {
    /// The stream as it is.
    Same { stream: String },
    /// A mapped stream, with the SCHEMA it is announced with.
    Mapped {
        schema: SchemaMessage,
        custom: Arc<Custom>,
        map_key: String,
    },
}

impl Output {
    fn stream(&self) -> &str {
        match self {
            Output::Same { stream } => stream,
            Output::Mapped { schema, .. } => &schema.stream,
        }
    }
}

/// The stream maps of a run: parsed at start-up, applied message by message.
#[derive(Debug, Clone)]
pub struct StreamMaps {
    entries: Vec<Entry>,
    /// A top-level `__else__: null`: streams no key names are dropped.
    drop_unnamed: bool,
    config: Value,
    /// The outputs of each source stream whose SCHEMA has arrived.
    outputs: HashMap<String, Vec<Output>>,
}

impl StreamMaps {
    /// Parses the settings and every expression in them; `None` when no maps are set.
    pub fn new(settings: &MapSettings) -> Result<Option<StreamMaps>, MapError> {
        if settings
            .faker_config
            .as_ref()
            .is_some_and(|f| !f.is_empty())
        {
            return Err(MapError::Config(
                "faker_config is set, but Faker ('fake') is not supported".into(),
            ));
        }
        let Some(maps) = settings.stream_maps.as_ref().filter(|m| !m.is_empty()) else {
            return Ok(None);
        };
        let mut entries = Vec::new();
        let mut drop_unnamed = false;
        for (key, value) in maps {
            if key == "__else__" {
                if !is_null(value) {
                    return Err(MapError::Config(format!(
                        "the top-level '__else__' can only be null or \"{NULL_STRING}\", not {value}"
                    )));
                }
                drop_unnamed = true;
                continue;
            }
            if key.starts_with("__") {
                return Err(MapError::Config(format!(
                    "option '{key}' is not expected at the top level"
                )));
            }
            entries.push(entry(key, value)?);
        }
        Ok(Some(StreamMaps {
            entries,
            drop_unnamed,
            config: Value::Object(settings.stream_map_config.clone().unwrap_or_default()),
            outputs: HashMap::new(),
        }))
    }

    /// Registers a SCHEMA message and returns the SCHEMA messages it maps to (none for a
    /// dropped stream).
    pub fn schema(&mut self, message: &SchemaMessage) -> Result<Vec<SchemaMessage>, MapError> {
        let name = message.stream.as_str();
        let mut primary: Option<Output> = (!self.drop_unnamed).then(|| Output::Same {
            stream: name.to_string(),
        });
        let mut extra: Vec<Output> = Vec::new();
        for e in &self.entries {
            if !matches_stream(&e.source, name) {
                continue;
            }
            let stream = match &e.alias {
                Some(alias) => alias_name(alias, name),
                // A glob map keeps each stream's own name.
                None if e.primary => name.to_string(),
                None => e.key.clone(),
            };
            let output = match &e.plan {
                Plan::Remove => None,
                Plan::Custom(custom) => {
                    let (schema, key_properties) = mapped_schema(&e.key, custom, message)?;
                    Some(Output::Mapped {
                        schema: SchemaMessage {
                            stream,
                            schema,
                            key_properties,
                            bookmark_properties: message.bookmark_properties.clone(),
                        },
                        custom: custom.clone(),
                        map_key: e.key.clone(),
                    })
                }
            };
            if e.primary {
                primary = output;
            } else if let Some(o) = output {
                extra.push(o);
            }
        }
        let outputs: Vec<Output> = primary.into_iter().chain(extra).collect();
        let schemas = outputs
            .iter()
            .map(|o| match o {
                Output::Same { .. } => message.clone(),
                Output::Mapped { schema, .. } => schema.clone(),
            })
            .collect();
        self.outputs.insert(name.to_string(), outputs);
        Ok(schemas)
    }

    /// The streams a source stream is written as (for ACTIVATE_VERSION and BATCH); the
    /// stream itself until its SCHEMA has been seen.
    pub fn streams_of(&self, stream: &str) -> Vec<String> {
        match self.outputs.get(stream) {
            Some(outputs) => outputs.iter().map(|o| o.stream().to_string()).collect(),
            None => vec![stream.to_string()],
        }
    }

    /// Whether records of `stream` pass unchanged under their own name (no work to do).
    pub fn is_identity(&self, stream: &str) -> bool {
        match self.outputs.get(stream).map(Vec::as_slice) {
            None => true,
            Some([Output::Same { stream: s }]) => s == stream,
            Some(_) => false,
        }
    }

    /// Maps one record of `stream` to its outputs: `(stream, record)` pairs.
    pub fn record(&self, stream: &str, record: &Record) -> Result<Vec<(String, Record)>, MapError> {
        let Some(outputs) = self.outputs.get(stream) else {
            return Ok(vec![(stream.to_string(), record.clone())]);
        };
        let mut mapped = Vec::with_capacity(outputs.len());
        for output in outputs {
            match output {
                Output::Same { stream } => mapped.push((stream.clone(), record.clone())),
                Output::Mapped {
                    schema,
                    custom,
                    map_key,
                } => {
                    let (alias, key_properties) = (&schema.stream, &schema.key_properties);
                    let fail = |property: &str, expression: &Expression, error: EvalError| {
                        MapError::Eval(Box::new(RecordFailure {
                            stream: stream.to_string(),
                            map: map_key.clone(),
                            property: property.to_string(),
                            expression: expression.source().to_string(),
                            record: describe(record, key_properties),
                            error,
                        }))
                    };
                    let scope = Scope {
                        record,
                        config: &self.config,
                        stream: alias,
                        original_stream: stream,
                        this: None,
                    };
                    if let Some(filter) = &custom.filter {
                        let keep = filter
                            .eval(&scope)
                            .map_err(|e| fail("__filter__", filter, e))?;
                        if !expr_truthy(&keep) {
                            continue;
                        }
                    }
                    let mut out: Record = if custom.include_by_default {
                        record.clone()
                    } else {
                        only(record, key_properties)
                    };
                    for (property, plan) in &custom.properties {
                        match plan {
                            None => {
                                out.remove(property);
                            }
                            Some(expression) => {
                                let this = record.get(property);
                                let value = expression
                                    .eval(&Scope { this, ..scope })
                                    .map_err(|e| fail(property, expression, e))?;
                                out.insert(property.clone(), value);
                            }
                        }
                    }
                    if !out.is_empty() {
                        mapped.push((alias.clone(), out));
                    }
                }
            }
        }
        Ok(mapped)
    }

    /// Maps one message: SCHEMA, RECORD and ACTIVATE_VERSION follow the maps; others pass.
    pub fn message(&mut self, message: Message) -> Result<Vec<Message>, MapError> {
        Ok(match message {
            Message::Schema(s) => self.schema(&s)?.into_iter().map(Message::Schema).collect(),
            Message::Record(r) => {
                if self.is_identity(&r.stream) {
                    return Ok(vec![Message::Record(r)]);
                }
                self.record(&r.stream, &r.record)?
                    .into_iter()
                    .map(|(stream, record)| {
                        Message::Record(RecordMessage {
                            stream,
                            record,
                            version: r.version,
                            time_extracted: r.time_extracted,
                        })
                    })
                    .collect()
            }
            Message::ActivateVersion(a) => self
                .streams_of(&a.stream)
                .into_iter()
                .map(|stream| {
                    Message::ActivateVersion(ActivateVersionMessage {
                        stream,
                        version: a.version,
                    })
                })
                .collect(),
            other => vec![other],
        })
    }
}

fn expr_truthy(v: &Value) -> bool {
    python::truthy(v)
}

fn is_null(v: &Value) -> bool {
    v.is_null() || v.as_str() == Some(NULL_STRING)
}

fn matches_stream(pattern: &str, stream: &str) -> bool {
    pattern == stream || fnmatch(&tokens(pattern), &stream.chars().collect::<Vec<_>>())
}

/// A piece of an fnmatch pattern.
#[derive(Debug, PartialEq)]
enum Token {
    /// `*`: any run of characters.
    Star,
    /// `?`: any one character.
    Any,
    /// `[seq]` or `[!seq]`, with ranges `a-z`.
    Set { negated: bool, members: Vec<char> },
    /// Itself (also a `[` without its `]`).
    Char(char),
}

fn tokens(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            // Runs of `*` are one `*`.
            '*' if out.last() == Some(&Token::Star) => {}
            '*' => out.push(Token::Star),
            '?' => out.push(Token::Any),
            '[' => match set_end(&chars[i + 1..]) {
                Some(end) => {
                    let set = &chars[i + 1..i + 1 + end];
                    let (negated, members) = match set.split_first() {
                        Some(('!', rest)) => (true, rest.to_vec()),
                        _ => (false, set.to_vec()),
                    };
                    out.push(Token::Set { negated, members });
                    i += end + 1;
                }
                None => out.push(Token::Char('[')),
            },
            c => out.push(Token::Char(c)),
        }
        i += 1;
    }
    out
}

impl Token {
    fn matches(&self, c: char) -> bool {
        match self {
            Token::Star | Token::Any => true,
            Token::Set { negated, members } => in_set(members, c) != *negated,
            Token::Char(t) => *t == c,
        }
    }
}

/// Python's `fnmatch.fnmatchcase`, in linear passes: on a mismatch after a `*`, that `*`
/// takes one more character (the classic wildcard algorithm).
fn fnmatch(pattern: &[Token], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some(Token::Star) => {
                star = Some((p, n));
                p += 1;
            }
            Some(t) if t.matches(name[n]) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p.min(pattern.len())..]
        .iter()
        .all(|t| *t == Token::Star)
}

/// Where a set's `]` is in what follows its `[` (a `]` first, or after `!`, is a member).
fn set_end(rest: &[char]) -> Option<usize> {
    let mut i = usize::from(rest.first() == Some(&'!'));
    if rest.get(i) == Some(&']') {
        i += 1;
    }
    rest.get(i..)?.iter().position(|c| *c == ']').map(|p| p + i)
}

fn in_set(set: &[char], c: char) -> bool {
    let mut i = 0;
    while i < set.len() {
        if i + 2 < set.len() && set[i + 1] == '-' {
            if set[i] <= c && c <= set[i + 2] {
                return true;
            }
            i += 3;
        } else {
            if set[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

/// `__alias__`: an expression over `__stream_name__`, or, when it is not one that
/// evaluates to a string (`customers-v2`, `raw.users`), the name as written.
fn alias_name(alias: &str, stream: &str) -> String {
    let record = Record::new();
    let config = Value::Null;
    Expression::parse(alias)
        .ok()
        .and_then(|e| {
            e.eval(&Scope {
                record: &record,
                config: &config,
                stream,
                original_stream: stream,
                this: None,
            })
            .ok()
        })
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| alias.to_string())
}

fn entry(key: &str, value: &Value) -> Result<Entry, MapError> {
    let plan_of = |v: &Value| -> Result<Plan, MapError> {
        if is_null(v) {
            return Ok(Plan::Remove);
        }
        match v {
            Value::Object(map) => custom(key, map).map(|c| Plan::Custom(Arc::new(c))),
            other => Err(MapError::Config(format!(
                "stream '{key}': a stream map is an object, null or \"{NULL_STRING}\", not {other}"
            ))),
        }
    };
    let object = value.as_object();
    let text = |option: &str| -> Result<Option<String>, MapError> {
        match object.and_then(|o| o.get(option)) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(MapError::Config(format!(
                "stream '{key}': {option} must be a string, not {other}"
            ))),
        }
    };
    let source = text("__source__")?;
    let alias = text("__alias__")?;
    Ok(Entry {
        key: key.to_string(),
        primary: source.is_none(),
        source: source.unwrap_or_else(|| key.to_string()),
        alias,
        plan: plan_of(value)?,
    })
}

fn custom(key: &str, map: &Map<String, Value>) -> Result<Custom, MapError> {
    let parse = |property: &str, source: &str| {
        Expression::parse(source).map_err(|problem| MapError::Expression {
            stream: key.to_string(),
            property: property.to_string(),
            expression: source.to_string(),
            problem,
        })
    };
    let mut custom = Custom {
        filter: None,
        key_properties: None,
        include_by_default: true,
        properties: Vec::new(),
    };
    for (property, value) in map {
        match property.as_str() {
            "__source__" | "__alias__" => {}
            "__filter__" => match value {
                Value::String(s) => custom.filter = Some(parse("__filter__", s)?),
                Value::Bool(true) => {}
                other => {
                    return Err(MapError::Config(format!(
                        "stream '{key}': __filter__ must be an expression (a string), not {other}"
                    )));
                }
            },
            "__key_properties__" => {
                custom.key_properties = Some(match value {
                    Value::Null => None,
                    Value::Array(items) => Some(
                        items
                            .iter()
                            .map(|i| i.as_str().map(str::to_string))
                            .collect::<Option<Vec<_>>>()
                            .ok_or_else(|| {
                                MapError::Config(format!(
                                    "stream '{key}': __key_properties__ must be a list of property names"
                                ))
                            })?,
                    ),
                    other => {
                        return Err(MapError::Config(format!(
                            "stream '{key}': __key_properties__ must be a list of property names or null, not {other}"
                        )));
                    }
                })
            }
            "__else__" => {
                if !is_null(value) {
                    return Err(MapError::Config(format!(
                        "stream '{key}': '__else__' can only be null or \"{NULL_STRING}\", not {value}"
                    )));
                }
                custom.include_by_default = false;
            }
            _ if is_null(value) => custom.properties.push((property.clone(), None)),
            _ => match value {
                Value::String(source) => {
                    custom.properties.push((property.clone(), Some(parse(property, source)?)))
                }
                other => {
                    return Err(MapError::Config(format!(
                        "stream '{key}': property '{property}' must be an expression (a string) or null, not {other}"
                    )));
                }
            },
        }
    }
    Ok(custom)
}

/// The JSON Schema and key properties of a mapped stream.
fn mapped_schema(
    key: &str,
    custom: &Custom,
    message: &SchemaMessage,
) -> Result<(Value, Vec<String>), MapError> {
    let raw = &message.schema;
    let raw_properties = raw
        .get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let key_properties: Vec<String> = match &custom.key_properties {
        Some(keys) => keys.clone().unwrap_or_default(),
        None => message.key_properties.clone(),
    };
    let mut schema = raw.as_object().cloned().unwrap_or_default();
    let mut properties = if custom.include_by_default {
        raw_properties.clone()
    } else {
        schema.remove("required");
        // Records keep their key properties; so does the schema.
        only(&raw_properties, &key_properties)
    };
    for (property, plan) in &custom.properties {
        match plan {
            None => {
                if key_properties.contains(property) {
                    return Err(MapError::Config(format!(
                        "stream '{key}': removing key property '{property}' is not permitted; \
                         set __key_properties__ to the new keys (or null) to remove it"
                    )));
                }
                properties.remove(property);
                if let Some(Value::Array(required)) = schema.get_mut("required") {
                    required.retain(|r| r.as_str() != Some(property));
                }
            }
            Some(expression) => {
                let known = |name: &str| raw_properties.get(name).cloned();
                let declared = expression
                    .infer_schema(&known)
                    .or_else(|| properties.get(property).cloned())
                    .unwrap_or_else(|| json!({}));
                properties.insert(property.clone(), nullable(declared));
            }
        }
    }
    for k in &key_properties {
        if !properties.contains_key(k) {
            return Err(MapError::Config(format!(
                "stream '{key}': key property '{k}' is not in the mapped schema; \
                 map it or change __key_properties__"
            )));
        }
    }
    schema.insert("properties".into(), Value::Object(properties));
    schema.entry("type").or_insert_with(|| json!("object"));
    Ok((Value::Object(schema), key_properties))
}

/// A computed property may be null (a missing input, `md5(None)`).
fn nullable(mut schema: Value) -> Value {
    let Some(object) = schema.as_object_mut() else {
        return schema;
    };
    match object.get_mut("type") {
        Some(Value::String(t)) if t != "null" => {
            let t = t.clone();
            object.insert("type".into(), json!([t, "null"]));
        }
        Some(Value::Array(types)) if !types.iter().any(|t| t == "null") => {
            types.push(json!("null"));
        }
        _ => {}
    }
    schema
}

/// The members of `map` named in `names`, in that order.
fn only(map: &Map<String, Value>, names: &[String]) -> Map<String, Value> {
    names
        .iter()
        .filter_map(|n| map.get(n).map(|v| (n.clone(), v.clone())))
        .collect()
}

/// A record named by its key properties; its other values stay out of logs.
fn describe(record: &Record, key_properties: &[String]) -> String {
    let keys = only(record, key_properties);
    if keys.is_empty() {
        "(a record without key properties)".into()
    } else {
        Value::Object(keys).to_string()
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod fnmatch_tests {
    use super::matches_stream;

    #[test]
    fn patterns_match_as_pythons_fnmatch() {
        for (pattern, name, want) in [
            ("*_archive", "2024_archive", true),
            ("*_archive", "archive", false),
            ("user?", "users", true),
            ("user?", "user", false),
            ("[abc]*", "beta", true),
            ("[!abc]*", "beta", false),
            ("[a-c]x", "bx", true),
            ("[]]x", "]x", true),
            ("x[", "x[", true),
            ("a**", "abc", true),
            ("raw.users", "raw.users", true),
            ("raw.users", "rawXusers", false),
            ("events[1]", "events[1]", true),
            (
                "*a*a*a*a*a*a*a*b",
                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaac",
                false,
            ),
            ("a*b?c", "axxbyc", true),
            ("a*b?c", "axxbc", false),
            ("**", "", true),
        ] {
            assert_eq!(matches_stream(pattern, name), want, "{pattern} {name}");
        }
    }
}
