//! The Singer catalog: which streams a tap offers, their schemas, and the user's choices.
//!
//! A tap writes its catalog on `--discover`; the user (or Meltano) marks streams and
//! properties `selected` in the metadata and hands it back with `--catalog`. Metadata entries
//! are addressed by breadcrumb: `[]` is the stream, `["properties", "id"]` a property,
//! `["properties", "fields", "properties", "summary"]` a nested one.
//!
//! [`SelectionMask`] applies the selection rules of the Meltano SDK, which agree with
//! singer-python where both define one:
//!
//! 1. a property of an unselected parent is unselected;
//! 2. `inclusion: unsupported` is never selected, `inclusion: automatic` always is;
//! 3. otherwise an explicit `selected` wins, then `selected-by-default`;
//! 4. otherwise a property inherits its parent's selection; a stream whose entry has none of
//!    these is not selected;
//! 5. a breadcrumb with no metadata entry at all inherits its parent's selection, and a
//!    stream without an entry (for example `"metadata": []`) is selected.
//!
//! The legacy `--properties` form, where `"selected": true` sits inside the JSON Schema
//! itself, is read into the same metadata by [`Catalog::from_legacy_properties`].
//!
//! ```
//! use singer_core::catalog::Catalog;
//! use serde_json::json;
//!
//! let catalog: Catalog = serde_json::from_value(json!({"streams": [{
//!     "tap_stream_id": "users", "stream": "users",
//!     "schema": {"type": "object", "properties": {"id": {"type": "integer"}, "ssn": {"type": "string"}}},
//!     "metadata": [
//!         {"breadcrumb": [], "metadata": {"selected": true}},
//!         {"breadcrumb": ["properties", "id"], "metadata": {"inclusion": "automatic"}},
//!         {"breadcrumb": ["properties", "ssn"], "metadata": {"selected": false}}
//!     ]
//! }]}))?;
//! let users = &catalog.streams[0];
//! assert!(users.is_selected());
//! let mask = users.selection_mask();
//! let mut record = json!({"id": 1, "ssn": "123"}).as_object().unwrap().clone();
//! mask.prune_record(&mut record);
//! assert_eq!(serde_json::Value::Object(record), json!({"id": 1}));
//! # Ok::<(), serde_json::Error>(())
//! ```

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::message::Record;

/// A path to a stream (`[]`) or a property (`["properties", "a", "properties", "b"]`).
pub type Breadcrumb = Vec<String>;

/// The catalog a tap discovers and a user edits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Catalog {
    /// The streams.
    pub streams: Vec<CatalogEntry>,
}

/// One stream of a catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogEntry {
    /// The tap's id of the stream.
    pub tap_stream_id: String,
    /// The stream name written in messages.
    #[serde(default)]
    pub stream: String,
    /// The JSON Schema of the stream's records.
    pub schema: Value,
    /// The primary key (also in metadata as `table-key-properties`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_properties: Vec<String>,
    /// Legacy top-level replication key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_key: Option<String>,
    /// Legacy top-level replication method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_method: Option<ReplicationMethod>,
    /// The metadata entries, by breadcrumb.
    #[serde(default)]
    pub metadata: Vec<MetadataEntry>,
    /// Fields this crate does not interpret, kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// Metadata for one breadcrumb.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetadataEntry {
    /// Where the metadata applies.
    pub breadcrumb: Breadcrumb,
    /// The metadata.
    pub metadata: Metadata,
}

/// How a field may be selected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Inclusion {
    /// Always synced (keys, the replication key).
    Automatic,
    /// Synced when selected.
    Available,
    /// Never synced.
    Unsupported,
}

/// How a stream is replicated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ReplicationMethod {
    /// Every row on every run.
    FullTable,
    /// Rows changed since the bookmark.
    Incremental,
    /// From a change log (no tap here implements it; it is parsed so catalogs round-trip).
    LogBased,
}

/// The standard metadata keys, plus whatever else a tap or user put there.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    /// The user's choice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selected: Option<bool>,
    /// The tap's suggestion when the user made no choice.
    #[serde(
        rename = "selected-by-default",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub selected_by_default: Option<bool>,
    /// Whether the field can be chosen at all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inclusion: Option<Inclusion>,
    /// The replication method the user chose.
    #[serde(
        rename = "replication-method",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub replication_method: Option<ReplicationMethod>,
    /// The replication key the user chose.
    #[serde(
        rename = "replication-key",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub replication_key: Option<String>,
    /// The only method the tap supports for this stream.
    #[serde(
        rename = "forced-replication-method",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub forced_replication_method: Option<ReplicationMethod>,
    /// Properties that can serve as replication key.
    #[serde(
        rename = "valid-replication-keys",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub valid_replication_keys: Option<Vec<String>>,
    /// The primary key.
    #[serde(
        rename = "table-key-properties",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub table_key_properties: Option<Vec<String>>,
    /// Other keys (`schema-name`, `sql-datatype`, ...), kept as they were.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Catalog {
    /// Reads a catalog file (`--catalog`).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| Error::Catalog(format!("{}: {e}", path.display())))
    }

    /// Reads a legacy `--properties` file, where selection lives in the schemas
    /// (`"selected": true`), into the metadata form.
    pub fn from_legacy_properties(path: &Path) -> Result<Self> {
        let mut catalog = Self::from_file(path)?;
        for entry in &mut catalog.streams {
            entry.lift_legacy_selection();
        }
        Ok(catalog)
    }

    /// The entry with this `tap_stream_id` (or, failing that, stream name).
    pub fn get(&self, id: &str) -> Option<&CatalogEntry> {
        self.streams
            .iter()
            .find(|s| s.tap_stream_id == id)
            .or_else(|| self.streams.iter().find(|s| s.stream == id))
    }
}

impl CatalogEntry {
    /// The stream name used in messages (`stream`, else `tap_stream_id`).
    pub fn stream_name(&self) -> &str {
        if self.stream.is_empty() {
            &self.tap_stream_id
        } else {
            &self.stream
        }
    }

    /// The metadata at `breadcrumb`, if any.
    pub fn metadata_at(&self, breadcrumb: &[String]) -> Option<&Metadata> {
        self.metadata
            .iter()
            .find(|e| e.breadcrumb == breadcrumb)
            .map(|e| &e.metadata)
    }

    /// The stream-level metadata, created if missing.
    pub fn stream_metadata_mut(&mut self) -> &mut Metadata {
        let pos = match self.metadata.iter().position(|e| e.breadcrumb.is_empty()) {
            Some(pos) => pos,
            None => {
                self.metadata.insert(
                    0,
                    MetadataEntry {
                        breadcrumb: vec![],
                        metadata: Metadata::default(),
                    },
                );
                0
            }
        };
        &mut self.metadata[pos].metadata
    }

    /// Whether the stream is selected.
    pub fn is_selected(&self) -> bool {
        self.selection_mask().stream_selected()
    }

    /// The primary key: stream metadata `table-key-properties`, else `key_properties`.
    pub fn key_properties(&self) -> Vec<String> {
        self.metadata_at(&[])
            .and_then(|m| m.table_key_properties.clone())
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| self.key_properties.clone())
    }

    /// The replication method: forced, else chosen in metadata, else legacy top level.
    pub fn replication_method(&self) -> Option<ReplicationMethod> {
        let md = self.metadata_at(&[]);
        md.and_then(|m| m.forced_replication_method)
            .or_else(|| md.and_then(|m| m.replication_method))
            .or(self.replication_method)
    }

    /// The replication key: chosen in metadata, else legacy top level.
    pub fn replication_key(&self) -> Option<String> {
        self.metadata_at(&[])
            .and_then(|m| m.replication_key.clone())
            .or_else(|| self.replication_key.clone())
    }

    /// Resolves which properties are selected.
    pub fn selection_mask(&self) -> SelectionMask {
        let by_crumb: HashMap<&[String], &Metadata> = self
            .metadata
            .iter()
            .map(|e| (e.breadcrumb.as_slice(), &e.metadata))
            .collect();
        let selected = resolve(by_crumb.get(&[][..]).copied(), None);
        let mut crumb = Vec::new();
        SelectionMask {
            root: build_node(&self.schema, selected, &mut crumb, &by_crumb),
        }
    }

    /// Moves legacy in-schema `selected` / `inclusion` flags into metadata.
    fn lift_legacy_selection(&mut self) {
        let mut found: Vec<(Breadcrumb, Option<bool>, Option<Inclusion>)> = Vec::new();
        fn collect(
            schema: &Value,
            crumb: &mut Breadcrumb,
            found: &mut Vec<(Breadcrumb, Option<bool>, Option<Inclusion>)>,
        ) {
            let selected = schema.get("selected").and_then(Value::as_bool);
            let inclusion = schema
                .get("inclusion")
                .and_then(|v| serde_json::from_value(v.clone()).ok());
            if selected.is_some() || inclusion.is_some() {
                found.push((crumb.clone(), selected, inclusion));
            }
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, sub) in props {
                    crumb.push("properties".into());
                    crumb.push(name.clone());
                    collect(sub, crumb, found);
                    crumb.truncate(crumb.len() - 2);
                }
            }
        }
        collect(&self.schema, &mut Vec::new(), &mut found);
        for (crumb, selected, inclusion) in found {
            let md = match self.metadata.iter_mut().find(|e| e.breadcrumb == crumb) {
                Some(e) => &mut e.metadata,
                None => {
                    self.metadata.push(MetadataEntry {
                        breadcrumb: crumb,
                        metadata: Metadata::default(),
                    });
                    let last = self.metadata.len() - 1;
                    &mut self.metadata[last].metadata
                }
            };
            if selected.is_some() {
                md.selected = selected;
            }
            if inclusion.is_some() {
                md.inclusion = inclusion;
            }
        }
    }
}

/// One breadcrumb's selection, given its metadata entry (if any) and its parent's selection
/// (`None` for the stream itself).
fn resolve(md: Option<&Metadata>, parent: Option<bool>) -> bool {
    if parent == Some(false) {
        return false;
    }
    let Some(md) = md else {
        // No entry at all: inherit; a stream without one is selected.
        return parent.unwrap_or(true);
    };
    match md.inclusion {
        Some(Inclusion::Unsupported) => return false,
        Some(Inclusion::Automatic) => return true,
        _ => {}
    }
    md.selected
        .or(md.selected_by_default)
        .unwrap_or(parent.unwrap_or(false))
}

fn build_node(
    schema: &Value,
    selected: bool,
    crumb: &mut Breadcrumb,
    by_crumb: &HashMap<&[String], &Metadata>,
) -> MaskNode {
    let children = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|props| {
            props
                .iter()
                .map(|(name, sub)| {
                    crumb.push("properties".into());
                    crumb.push(name.clone());
                    let child_selected =
                        resolve(by_crumb.get(crumb.as_slice()).copied(), Some(selected));
                    let node = build_node(sub, child_selected, crumb, by_crumb);
                    crumb.truncate(crumb.len() - 2);
                    (name.clone(), node)
                })
                .collect()
        });
    MaskNode { selected, children }
}

/// The resolved selection of a stream and each of its properties.
#[derive(Debug, Clone, PartialEq)]
pub struct SelectionMask {
    root: MaskNode,
}

#[derive(Debug, Clone, PartialEq)]
struct MaskNode {
    selected: bool,
    /// `None` for a schema that declares no properties: its value is kept whole.
    children: Option<HashMap<String, MaskNode>>,
}

impl MaskNode {
    fn all_selected(&self) -> bool {
        self.selected
            && self
                .children
                .as_ref()
                .is_none_or(|c| c.values().all(MaskNode::all_selected))
    }

    fn prune_schema(&self, schema: &mut Value) {
        let Some(children) = &self.children else {
            return;
        };
        if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            props.retain(|name, _| children.get(name).is_some_and(|c| c.selected));
            for (name, sub) in props.iter_mut() {
                if let Some(child) = children.get(name) {
                    child.prune_schema(sub);
                }
            }
        }
        if let Some(required) = schema.get_mut("required").and_then(Value::as_array_mut) {
            required.retain(|r| {
                r.as_str()
                    .and_then(|name| children.get(name))
                    .is_some_and(|c| c.selected)
            });
        }
    }

    fn prune_object(&self, object: &mut Map<String, Value>) {
        let Some(children) = &self.children else {
            return;
        };
        object.retain(|name, value| match children.get(name) {
            Some(child) if child.selected => {
                if let Value::Object(inner) = value {
                    child.prune_object(inner);
                }
                true
            }
            _ => false,
        });
    }
}

impl SelectionMask {
    /// Whether the stream itself is selected.
    pub fn stream_selected(&self) -> bool {
        self.root.selected
    }

    /// Whether the property at `breadcrumb` is selected. Properties the schema does not
    /// declare are not.
    pub fn is_selected(&self, breadcrumb: &[String]) -> bool {
        let mut node = &self.root;
        for pair in breadcrumb.chunks(2) {
            let [kind, name] = pair else { return false };
            if kind != "properties" {
                return false;
            }
            match node.children.as_ref().and_then(|c| c.get(name)) {
                Some(child) => node = child,
                None => return false,
            }
        }
        node.selected
    }

    /// True when the stream and every declared property are selected.
    pub fn selects_everything(&self) -> bool {
        self.root.all_selected()
    }

    /// Removes unselected properties (and their `required` entries) from a JSON Schema.
    pub fn prune_schema(&self, schema: &mut Value) {
        self.root.prune_schema(schema);
    }

    /// Removes unselected and undeclared properties from a record, at every level the schema
    /// declares properties; objects the schema leaves open are kept whole.
    pub fn prune_record(&self, record: &mut Record) {
        self.root.prune_object(record);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry(metadata: Value) -> CatalogEntry {
        serde_json::from_value(json!({
            "tap_stream_id": "s",
            "schema": {"type": "object", "properties": {
                "id": {"type": "integer"},
                "a": {"type": "string"},
                "b": {"type": "string"},
                "nested": {"type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}}},
                "open": {"type": "object"}
            }},
            "metadata": metadata
        }))
        .expect("valid entry")
    }

    fn crumb(parts: &[&str]) -> Breadcrumb {
        parts
            .iter()
            .flat_map(|p| ["properties".to_string(), p.to_string()])
            .collect()
    }

    #[test]
    fn stream_selection_without_choices() {
        assert!(
            entry(json!([])).is_selected(),
            "no metadata at all: everything"
        );
        assert!(entry(json!([])).selection_mask().selects_everything());
        assert!(
            !entry(json!([{"breadcrumb": [], "metadata": {"inclusion": "available"}}]))
                .is_selected()
        );
    }

    #[test]
    fn selected_beats_selected_by_default() {
        let e = entry(
            json!([{"breadcrumb": [], "metadata": {"selected": false, "selected-by-default": true}}]),
        );
        assert!(!e.is_selected());
        let e = entry(json!([{"breadcrumb": [], "metadata": {"selected-by-default": true}}]));
        assert!(e.is_selected());
    }

    #[test]
    fn property_rules() {
        let e = entry(json!([
            {"breadcrumb": [], "metadata": {"selected": true}},
            {"breadcrumb": ["properties", "id"], "metadata": {"inclusion": "automatic", "selected": false}},
            {"breadcrumb": ["properties", "a"], "metadata": {"inclusion": "unsupported", "selected": true}},
            {"breadcrumb": ["properties", "b"], "metadata": {"inclusion": "available", "selected": false, "selected-by-default": true}},
            {"breadcrumb": ["properties", "nested"], "metadata": {"selected": true}},
            {"breadcrumb": ["properties", "nested", "properties", "y"], "metadata": {"selected-by-default": false}}
        ]));
        let m = e.selection_mask();
        assert!(
            m.is_selected(&crumb(&["id"])),
            "automatic wins over selected=false"
        );
        assert!(!m.is_selected(&crumb(&["a"])), "unsupported never selected");
        assert!(!m.is_selected(&crumb(&["b"])), "explicit selected wins");
        assert!(m.is_selected(&crumb(&["nested", "x"])), "inherits parent");
        assert!(
            !m.is_selected(&crumb(&["nested", "y"])),
            "selected-by-default false"
        );
        assert!(
            m.is_selected(&crumb(&["open"])),
            "no metadata inherits stream"
        );
        assert!(!m.is_selected(&crumb(&["undeclared"])));
    }

    #[test]
    fn children_of_unselected_parent_are_unselected_even_if_automatic() {
        let e = entry(json!([
            {"breadcrumb": [], "metadata": {"selected": true}},
            {"breadcrumb": ["properties", "nested"], "metadata": {"selected": false}},
            {"breadcrumb": ["properties", "nested", "properties", "x"], "metadata": {"inclusion": "automatic"}}
        ]));
        assert!(!e.selection_mask().is_selected(&crumb(&["nested", "x"])));
        let e = entry(json!([
            {"breadcrumb": [], "metadata": {"selected": false}},
            {"breadcrumb": ["properties", "id"], "metadata": {"inclusion": "automatic"}}
        ]));
        assert!(!e.selection_mask().is_selected(&crumb(&["id"])));
    }

    #[test]
    fn pruning_schema_and_record() {
        let e = entry(json!([
            {"breadcrumb": [], "metadata": {"selected": true}},
            {"breadcrumb": ["properties", "b"], "metadata": {"selected": false}},
            {"breadcrumb": ["properties", "nested", "properties", "y"], "metadata": {"selected": false}}
        ]));
        let m = e.selection_mask();
        let mut schema = e.schema.clone();
        schema["required"] = json!(["id", "b"]);
        m.prune_schema(&mut schema);
        let props: Vec<_> = schema["properties"]
            .as_object()
            .expect("obj")
            .keys()
            .cloned()
            .collect();
        assert_eq!(props, ["id", "a", "nested", "open"]);
        assert_eq!(
            schema["properties"]["nested"]["properties"],
            json!({"x": {"type": "integer"}})
        );
        assert_eq!(schema["required"], json!(["id"]));

        let mut record = json!({"id": 1, "a": "x", "b": "y", "extra": 1,
            "nested": {"x": 1, "y": 2}, "open": {"anything": {"deep": true}}})
        .as_object()
        .cloned()
        .expect("obj");
        m.prune_record(&mut record);
        assert_eq!(
            Value::Object(record),
            json!({"id": 1, "a": "x", "nested": {"x": 1}, "open": {"anything": {"deep": true}}})
        );
    }

    #[test]
    fn legacy_properties_selection() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("properties.json");
        std::fs::write(
            &path,
            json!({"streams": [{"tap_stream_id": "s", "schema": {"selected": true, "type": "object",
                "properties": {"id": {"type": "integer"}, "secret": {"type": "string", "selected": false}}}}]})
            .to_string(),
        )
        .expect("write");
        let c = Catalog::from_legacy_properties(&path).expect("reads");
        let e = c.get("s").expect("stream");
        assert!(e.is_selected());
        let m = e.selection_mask();
        assert!(m.is_selected(&crumb(&["id"])));
        assert!(!m.is_selected(&crumb(&["secret"])));
    }

    #[test]
    fn replication_settings_precedence_and_round_trip() {
        let e: CatalogEntry = serde_json::from_value(json!({
            "tap_stream_id": "s", "stream": "s", "schema": {}, "key_properties": ["legacy"],
            "replication_method": "FULL_TABLE", "replication_key": "old",
            "metadata": [{"breadcrumb": [], "metadata": {
                "replication-method": "INCREMENTAL", "replication-key": "updated",
                "table-key-properties": ["id"], "schema-name": "public"}}]
        }))
        .expect("entry");
        assert_eq!(e.replication_method(), Some(ReplicationMethod::Incremental));
        assert_eq!(e.replication_key().as_deref(), Some("updated"));
        assert_eq!(e.key_properties(), ["id"]);
        let back: CatalogEntry =
            serde_json::from_value(serde_json::to_value(&e).expect("ser")).expect("de");
        assert_eq!(back, e);
        assert_eq!(
            back.metadata_at(&[])
                .and_then(|m| m.extra.get("schema-name")),
            Some(&json!("public"))
        );
    }
}
