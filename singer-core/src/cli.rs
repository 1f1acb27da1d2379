//! The command line every tap and target shares, as Singer and Meltano users know it.
//!
//! * `--config FILE` may repeat: later files override earlier ones key by key.
//!   `--config ENV` reads settings from environment variables named `<PLUGIN>_<SETTING>`
//!   in upper snake case (`TAP_JIRA_API_TOKEN`); they override the files. Values are parsed
//!   by the setting's type: integers, numbers, booleans (`true`/`1`/`yes`/`on`), arrays (JSON,
//!   or comma-separated strings) and objects (JSON).
//! * The merged config is validated against the plugin's settings schema before any work;
//!   every problem is listed in one error, and values of secret settings never appear.
//! * `--about [--format json|markdown]` describes the plugin the way the Meltano SDK does:
//!   name, description, version, capabilities, and the settings as JSON Schema with secrets
//!   marked `secret` and `writeOnly`.
//! * Taps: `--discover`, `--catalog`, `--properties` (legacy), `--state`, `--test`.
//!   Targets: `--input FILE` (default stdin). The tap and target SDKs run them
//!   (`singer_tap::main`, `singer_target::main`) after [`start`].

use std::path::{Path, PathBuf};

use clap::{Args, Parser, ValueEnum};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};
use crate::log::{LogFormat, env_prefix};

/// The version of this SDK, reported as `sdk_version` in `--about`.
pub const SDK_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Output style of `--about`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AboutFormat {
    /// The SDK's JSON document.
    Json,
    /// A Markdown page.
    Markdown,
}

/// Flags every plugin takes.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// A JSON config file (repeatable; later files win), or ENV to read settings from
    /// environment variables.
    #[arg(long = "config", value_name = "FILE|ENV")]
    pub config: Vec<String>,
    /// Describe the plugin and its settings, then exit.
    #[arg(long)]
    pub about: bool,
    /// Output format of --about (default: text).
    #[arg(long, value_enum, ignore_case = true)]
    pub format: Option<AboutFormat>,
    /// Log line format on stderr.
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

/// The command line of a tap.
#[derive(Debug, Clone, Parser)]
pub struct TapArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Write the catalog of available streams to stdout, then exit.
    #[arg(long)]
    pub discover: bool,
    /// The catalog with the streams and properties to sync.
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// A legacy catalog with selection inside the schemas (use --catalog).
    #[arg(long, value_name = "FILE", conflicts_with = "catalog")]
    pub properties: Option<PathBuf>,
    /// The state of the previous run.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Check the connection: sync one page of each stream, then exit.
    #[arg(long, num_args = 0..=1, default_missing_value = "all", value_name = "all|schema")]
    pub test: Option<String>,
    /// Assert at run time that bookmarks only advance and that sorted streams arrive sorted.
    #[arg(long)]
    pub verify: bool,
}

/// The command line of a target.
#[derive(Debug, Clone, Parser)]
pub struct TargetArgs {
    #[command(flatten)]
    #[allow(missing_docs)]
    pub common: CommonArgs,
    /// Read messages from this file instead of stdin.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,
}

/// Parses the command line for a plugin called `name`.
pub fn parse_args<T: Parser>(name: &'static str, version: &'static str) -> T {
    let command = T::command().name(name).bin_name(name).version(version);
    let matches = command.get_matches();
    match T::from_arg_matches(&matches) {
        Ok(args) => args,
        Err(e) => e.exit(),
    }
}

/// What `--about` says about a plugin.
#[derive(Debug, Clone)]
pub struct About {
    /// The executable name (`tap-jira`).
    pub name: &'static str,
    /// One paragraph.
    pub description: &'static str,
    /// The plugin's version.
    pub version: &'static str,
    /// Singer capabilities (`catalog`, `discover`, `state`, `about`, ...).
    pub capabilities: Vec<&'static str>,
    /// The settings: a JSON Schema object with `properties` (and `required`).
    pub settings: Value,
}

impl About {
    /// The SDK's `--about --format json` document.
    pub fn to_json(&self) -> Value {
        let mut settings = self.settings.clone();
        if let Some(obj) = settings.as_object_mut() {
            obj.insert(
                "$schema".into(),
                json!("https://json-schema.org/draft/2020-12/schema"),
            );
        }
        json!({
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "sdk_version": format!("singer-rs {SDK_VERSION}"),
            "supported_python_versions": null,
            "capabilities": self.capabilities,
            "settings": settings,
        })
    }

    fn properties(&self) -> Vec<(&String, &Value)> {
        self.settings
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.iter().collect())
            .unwrap_or_default()
    }

    fn required(&self) -> Vec<&str> {
        self.settings
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default()
    }

    /// The names of settings marked secret.
    pub fn secret_settings(&self) -> Vec<String> {
        self.properties()
            .into_iter()
            .filter(|(_, s)| is_secret(s))
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// A Markdown page, laid out as the SDK's.
    pub fn to_markdown(&self) -> String {
        let mut out = format!(
            "# `{}`\n\n{}\n\nBuilt with [singer-rs](https://github.com/singer-rs/singer-rs) {SDK_VERSION}.\n\n## Capabilities\n\n",
            self.name, self.description
        );
        for c in &self.capabilities {
            out.push_str(&format!("- `{c}`\n"));
        }
        out.push_str("\n## Settings\n\n| Setting | Required | Default | Description |\n|:--------|:--------:|:-------:|:------------|\n");
        let required = self.required();
        for (name, schema) in self.properties() {
            let default = schema
                .get("default")
                .map_or("None".to_string(), |d| match d {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
            let mut description = schema
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .replace('\n', "<BR/>");
            if is_secret(schema) {
                description = format!("{description} (secret)").trim().to_string();
            }
            out.push_str(&format!(
                "| {name} | {} | {default} | {description} |\n",
                if required.contains(&name.as_str()) {
                    "True"
                } else {
                    "False"
                }
            ));
        }
        out.push_str(&format!(
            "\nA full list of supported settings and capabilities is available by running: `{} --about`\n",
            self.name
        ));
        out
    }

    /// Plain text, as the SDK prints without `--format`.
    pub fn to_text(&self) -> String {
        let mut out = format!(
            "Name: {}\nDescription: {}\nVersion: {}\nSDK Version: singer-rs {SDK_VERSION}\nCapabilities:\n",
            self.name, self.description, self.version
        );
        for c in &self.capabilities {
            out.push_str(&format!("  - {c}\n"));
        }
        out.push_str("Settings:\n");
        let prefix = env_prefix(self.name);
        for (name, schema) in self.properties() {
            out.push_str(&format!(
                "  - Name: {name}\n    Type: {}\n    Environment Variable: {prefix}_{}\n",
                schema.get("type").map(Value::to_string).unwrap_or_default(),
                name.to_uppercase().replace('-', "_")
            ));
        }
        out
    }

    /// Renders `--about` in the requested format.
    pub fn render(&self, format: Option<AboutFormat>) -> String {
        match format {
            Some(AboutFormat::Json) => {
                let mut s = serde_json::to_string_pretty(&self.to_json()).unwrap_or_default();
                s.push('\n');
                s
            }
            Some(AboutFormat::Markdown) => self.to_markdown(),
            None => self.to_text(),
        }
    }
}

fn is_secret(schema: &Value) -> bool {
    let flag = |k: &str| schema.get(k).and_then(Value::as_bool).unwrap_or(false);
    flag("secret")
        || flag("writeOnly")
        || schema
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| p.values().any(is_secret))
}

/// Reads, merges, and validates the config from `--config` arguments.
pub fn load_config(about: &About, sources: &[String]) -> Result<Map<String, Value>> {
    load_config_with_env(about, sources, |name| std::env::var(name).ok())
}

/// [`load_config`] with the environment given as a lookup function.
pub fn load_config_with_env(
    about: &About,
    sources: &[String],
    env: impl Fn(&str) -> Option<String>,
) -> Result<Map<String, Value>> {
    let mut config = Map::new();
    let mut problems = Vec::new();
    let mut use_env = false;
    for source in sources {
        if source == "ENV" {
            use_env = true;
            continue;
        }
        match read_config_file(Path::new(source)) {
            Ok(values) => config.extend(values),
            Err(p) => problems.push(p),
        }
    }
    if use_env {
        let prefix = env_prefix(about.name);
        for (name, schema) in about.properties() {
            let var = format!("{prefix}_{}", name.to_uppercase().replace('-', "_"));
            if let Some(raw) = env(&var) {
                match parse_env_value(&raw, schema) {
                    Ok(v) => {
                        config.insert(name.clone(), v);
                    }
                    Err(reason) => problems.push(format!("{var}: {reason}")),
                }
            }
        }
    }
    if problems.is_empty() {
        problems.extend(validate_config(about, &config));
    }
    if problems.is_empty() {
        for name in unknown_settings(about, &config) {
            tracing::warn!(
                setting = %name,
                "unknown setting '{name}' is ignored: it is not among the settings `{} --about` lists",
                about.name
            );
        }
        Ok(config)
    } else {
        Err(Error::Config { problems })
    }
}

/// The settings in `config` that the plugin does not have (names only: values may be
/// secrets).
pub fn unknown_settings(about: &About, config: &Map<String, Value>) -> Vec<String> {
    let known = about.properties();
    config
        .keys()
        .filter(|k| !known.iter().any(|(name, _)| name == k))
        .cloned()
        .collect()
}

fn read_config_file(path: &Path) -> std::result::Result<Map<String, Value>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(format!(
            "config file {} must hold a JSON object",
            path.display()
        )),
        // The parser's message quotes no content, only a position.
        Err(e) => Err(format!(
            "config file {} is not valid JSON: {e}",
            path.display()
        )),
    }
}

fn schema_types(schema: &Value) -> Vec<&str> {
    let mut types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    for key in ["anyOf", "oneOf"] {
        if let Some(variants) = schema.get(key).and_then(Value::as_array) {
            for v in variants {
                types.extend(schema_types(v));
            }
        }
    }
    types
}

fn parse_env_value(raw: &str, schema: &Value) -> std::result::Result<Value, String> {
    let types = schema_types(schema);
    let has = |t: &str| types.contains(&t);
    if has("integer") {
        return raw
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| "not an integer".to_string());
    }
    if has("number") {
        return raw
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
            .ok_or_else(|| "not a number".to_string());
    }
    if has("boolean") {
        return Ok(Value::Bool(matches!(
            raw.trim().to_lowercase().as_str(),
            "true" | "1" | "yes" | "on"
        )));
    }
    if has("array") {
        if let Ok(v @ Value::Array(_)) = serde_json::from_str::<Value>(raw) {
            return Ok(v);
        }
        return Ok(Value::Array(
            raw.split(',')
                .map(|s| Value::String(s.trim().to_string()))
                .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()))
                .collect(),
        ));
    }
    if has("object") {
        return match serde_json::from_str::<Value>(raw) {
            Ok(v @ Value::Object(_)) => Ok(v),
            _ => Err("not a JSON object".to_string()),
        };
    }
    Ok(Value::String(raw.to_string()))
}

/// Checks a config against the settings schema; one line per problem, secrets masked.
pub fn validate_config(about: &About, config: &Map<String, Value>) -> Vec<String> {
    let validator = match jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .build(&about.settings)
    {
        Ok(v) => v,
        Err(e) => return vec![format!("the plugin's settings schema is invalid: {e}")],
    };
    let secrets = about.secret_settings();
    let instance = Value::Object(config.clone());
    validator
        .iter_errors(&instance)
        .map(|e| {
            let path = e.instance_path().to_string();
            let top = path.trim_start_matches('/').split('/').next().unwrap_or("");
            let message = if secrets.iter().any(|s| s == top) {
                e.masked_with("(secret)").to_string()
            } else {
                e.to_string()
            };
            if path.is_empty() {
                message
            } else {
                let keys: String = path
                    .trim_start_matches('/')
                    .split('/')
                    .map(|k| format!("['{k}']"))
                    .collect();
                format!("{message} in config{keys}")
            }
        })
        .collect()
}

/// Turns a validated config map into the plugin's config type. `null` values count as unset.
pub fn deserialize_config<T: DeserializeOwned>(mut config: Map<String, Value>) -> Result<T> {
    config.retain(|_, v| !v.is_null());
    serde_json::from_value(Value::Object(config)).map_err(|e| Error::Config {
        problems: vec![e.to_string()],
    })
}

/// A plugin's command line: the flags every plugin takes, and its own.
pub trait PluginArgs: Parser {
    /// The flags every plugin takes.
    fn common(&self) -> &CommonArgs;
}

impl PluginArgs for TapArgs {
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

impl PluginArgs for TargetArgs {
    fn common(&self) -> &CommonArgs {
        &self.common
    }
}

/// What every plugin does first: parse the command line, start logging, and answer
/// `--about`. `None` means the run is over (`--about` was answered).
pub fn start<A: PluginArgs>(about: &About) -> Option<A> {
    let args: A = parse_args(about.name, about.version);
    crate::log::init(about.name, args.common().log_format);
    if args.common().about {
        print!("{}", about.render(args.common().format));
        return None;
    }
    Some(args)
}

/// Loads, validates and deserializes the plugin's settings from `--config` sources.
pub fn load_settings<C: DeserializeOwned>(about: &About, sources: &[String]) -> Result<C> {
    deserialize_config(load_config(about, sources)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn about() -> About {
        About {
            name: "tap-demo",
            description: "A demo.",
            version: "1.0.0",
            capabilities: vec!["catalog", "discover", "state", "about"],
            settings: json!({
                "type": "object",
                "properties": {
                    "api_token": {"type": "string", "secret": true, "writeOnly": true, "description": "The token"},
                    "page_size": {"type": ["integer", "null"], "default": 50, "minimum": 1},
                    "ratio": {"type": ["number", "null"]},
                    "flag": {"type": ["boolean", "null"]},
                    "projects": {"type": ["array", "null"], "items": {"type": "string"}},
                    "extra": {"type": ["object", "null"]},
                    "my-dashed": {"type": ["string", "null"]}
                },
                "required": ["api_token"]
            }),
        }
    }

    #[test]
    fn unknown_settings_are_named() {
        let config = json!({"api_token": "s3cr3t", "page_sise": 10, "flag": true});
        let unknown = unknown_settings(&about(), config.as_object().expect("object"));
        assert_eq!(unknown, ["page_sise"]);
    }

    #[test]
    fn about_json_has_the_sdk_keys_and_marks_secrets() {
        let v = about().to_json();
        let keys: Vec<_> = v.as_object().expect("obj").keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "name",
                "description",
                "version",
                "sdk_version",
                "supported_python_versions",
                "capabilities",
                "settings"
            ]
        );
        assert_eq!(
            v["settings"]["properties"]["api_token"]["secret"],
            json!(true)
        );
        assert_eq!(about().secret_settings(), ["api_token"]);
        let md = about().to_markdown();
        assert!(md.starts_with("# `tap-demo`"));
        assert!(md.contains("| api_token | True | None | The token (secret) |"));
        assert!(md.contains("| page_size | False | 50 |"));
        assert!(
            about()
                .to_text()
                .contains("Environment Variable: TAP_DEMO_MY_DASHED")
        );
    }

    #[test]
    fn files_merge_in_order_and_env_overrides() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = dir.path().join("a.json");
        let b = dir.path().join("b.json");
        std::fs::write(&a, r#"{"api_token": "t1", "page_size": 10, "ratio": 0.5}"#).expect("a");
        std::fs::write(&b, r#"{"page_size": 20}"#).expect("b");
        let c = load_config(
            &about(),
            &[a.display().to_string(), b.display().to_string()],
        )
        .expect("valid");
        assert_eq!(c["page_size"], json!(20));
        assert_eq!(c["api_token"], json!("t1"));

        let env: std::collections::HashMap<&str, &str> = [
            ("TAP_DEMO_PAGE_SIZE", "30"),
            ("TAP_DEMO_FLAG", "Yes"),
            ("TAP_DEMO_PROJECTS", "A, B"),
            ("TAP_DEMO_RATIO", "1.5"),
            ("TAP_DEMO_MY_DASHED", "d"),
            ("TAP_DEMO_EXTRA", r#"{"k": 1}"#),
        ]
        .into_iter()
        .collect();
        let lookup = |name: &str| env.get(name).map(|v| v.to_string());
        let c = load_config_with_env(&about(), &["ENV".into(), a.display().to_string()], lookup)
            .expect("valid");
        assert_eq!(c["page_size"], json!(30));
        assert_eq!(c["flag"], json!(true));
        assert_eq!(c["projects"], json!(["A", "B"]));
        assert_eq!(c["ratio"], json!(1.5));
        assert_eq!(c["my-dashed"], json!("d"));
        assert_eq!(c["extra"], json!({"k": 1}));
    }

    #[test]
    fn every_problem_is_listed_and_secrets_are_masked() {
        let dir = tempfile::tempdir().expect("tmp");
        let a = dir.path().join("a.json");
        std::fs::write(
            &a,
            r#"{"api_token": 12345678, "page_size": "x", "flag": 3}"#,
        )
        .expect("a");
        let e = load_config(&about(), &[a.display().to_string()]).expect_err("invalid");
        let Error::Config { problems } = &e else {
            panic!("{e}")
        };
        assert_eq!(problems.len(), 3, "{problems:?}");
        let text = e.to_string();
        assert!(!text.contains("12345678"), "{text}");
        assert!(text.contains("in config['api_token']"), "{text}");
        assert!(text.contains("in config['page_size']"), "{text}");

        std::fs::write(&a, r#"{"page_size": 5}"#).expect("a");
        let e = load_config(&about(), &[a.display().to_string()]).expect_err("missing");
        assert!(
            e.to_string()
                .contains("\"api_token\" is a required property"),
            "{e}"
        );

        let e = load_config(
            &about(),
            &[dir.path().join("nope.json").display().to_string()],
        )
        .expect_err("missing file");
        assert!(e.to_string().contains("cannot read config file"), "{e}");
    }

    #[test]
    fn nulls_are_unset_when_deserializing() {
        #[derive(serde::Deserialize)]
        struct C {
            #[serde(default = "fifty")]
            page_size: u32,
        }
        fn fifty() -> u32 {
            50
        }
        let mut m = Map::new();
        m.insert("page_size".into(), Value::Null);
        let c: C = deserialize_config(m).expect("ok");
        assert_eq!(c.page_size, 50);
    }
}
