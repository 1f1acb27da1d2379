//! `/rest/api/3/search/jql` (GET and POST): field selection, opaque cursor tokens
//! and the family F envelope `{issues, nextPageToken?, isLast}`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};
use crate::jql;
use crate::params::Params;
use crate::site::{FieldDef, Site};

/// Which issue fields to render (`fields` parameter).
#[derive(Debug, Clone, Default)]
pub struct FieldSel {
    /// Whether `fields` was given at all (the default is `id` only).
    pub given: bool,
    pub all: bool,
    pub navigable: bool,
    pub include: Vec<String>,
    pub exclude: Vec<String>,
}

impl FieldSel {
    /// Parse `fields` entries (`*all`, `*navigable`, `-name`, `name`).
    pub fn parse(entries: &[String]) -> Self {
        let mut sel = FieldSel {
            given: !entries.is_empty(),
            ..Self::default()
        };
        for e in entries
            .iter()
            .flat_map(|e| e.split(','))
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            match e {
                "*all" => sel.all = true,
                "*navigable" => sel.navigable = true,
                _ => match e.strip_prefix('-') {
                    Some(x) => sel.exclude.push(x.to_string()),
                    None => sel.include.push(e.to_string()),
                },
            }
        }
        sel
    }

    /// Every field (the default of `GET /issue/{key}`).
    pub fn everything() -> Self {
        FieldSel {
            given: true,
            all: true,
            ..Self::default()
        }
    }

    pub fn wants(&self, f: &FieldDef) -> bool {
        let named = |list: &[String]| list.iter().any(|x| x.eq_ignore_ascii_case(f.id));
        if !f.on_issue || named(&self.exclude) {
            return false;
        }
        self.all || (self.navigable && f.navigable) || named(&self.include)
    }

    fn any(&self, site: &Site) -> bool {
        site.fields.iter().any(|f| self.wants(f))
    }
}

/// Render one issue with a field selection and `expand` list.
pub fn render_issue(site: &Site, idx: usize, sel: &FieldSel, expand: &[String]) -> Value {
    let issue = &site.issues[idx];
    let mut m = Map::new();
    if sel.given {
        m.insert(
            "expand".into(),
            json!(
                "renderedFields,names,schema,operations,editmeta,changelog,versionedRepresentations"
            ),
        );
    }
    m.insert("id".into(), json!(issue.id.to_string()));
    if sel.given {
        m.insert(
            "self".into(),
            json!(format!("{}/rest/api/3/issue/{}", site.base_url, issue.id)),
        );
        m.insert("key".into(), json!(issue.key));
    }
    if sel.any(site) {
        let mut fields = Map::new();
        for f in site.fields.iter().filter(|f| sel.wants(f)) {
            fields.insert(f.id.to_string(), site.issue_field(issue, f.id));
        }
        m.insert("fields".into(), Value::Object(fields));
    }
    if expand.iter().any(|e| e == "changelog") {
        m.insert("changelog".into(), site.embedded_changelog(issue));
    }
    Value::Object(m)
}

/// A normalised search request (from the query string or the POST body).
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub jql: String,
    pub next_page_token: Option<String>,
    pub max_results: Option<i64>,
    pub fields: Vec<String>,
    pub expand: Vec<String>,
}

/// The POST body (`SearchAndReconcileRequestBean`); unknown properties are a 400.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct PostBody {
    jql: Option<String>,
    next_page_token: Option<String>,
    max_results: Option<i64>,
    fields: Option<Vec<String>>,
    expand: Option<String>,
    #[allow(dead_code)]
    properties: Option<Vec<String>>,
    #[allow(dead_code)]
    fields_by_keys: Option<bool>,
    #[allow(dead_code)]
    fail_fast: Option<bool>,
    #[allow(dead_code)]
    reconcile_issues: Option<Vec<i64>>,
}

fn split_expand(s: &str) -> Vec<String> {
    s.split(',')
        .map(|e| e.trim().to_string())
        .filter(|e| !e.is_empty())
        .collect()
}

impl SearchRequest {
    pub fn from_params(p: &Params) -> ApiResult<Self> {
        Ok(SearchRequest {
            jql: p.get("jql").unwrap_or_default().to_string(),
            next_page_token: p
                .get("nextPageToken")
                .filter(|t| !t.is_empty())
                .map(str::to_string),
            max_results: p.int("maxResults")?,
            fields: p.list("fields"),
            expand: p.list("expand"),
        })
    }

    pub fn from_body(body: &[u8]) -> ApiResult<Self> {
        let b: PostBody = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_request(format!(
                "Invalid request payload. Refer to the REST API documentation and try again. ({e})"
            ))
        })?;
        Ok(SearchRequest {
            jql: b.jql.unwrap_or_default(),
            next_page_token: b.next_page_token.filter(|t| !t.is_empty()),
            max_results: b.max_results,
            fields: b.fields.unwrap_or_default(),
            expand: b.expand.as_deref().map(split_expand).unwrap_or_default(),
        })
    }
}

/// FNV-1a 64-bit: a stable hash for binding tokens to their query.
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The opaque cursor: base64url of `v1:<offset>:<hash of the JQL>`.
pub fn encode_token(jql: &str, offset: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("v1:{offset}:{:016x}", fnv1a(jql.trim())))
}

/// Decode a cursor and check it belongs to `jql`.
pub fn decode_token(jql: &str, token: &str) -> ApiResult<usize> {
    let invalid =
        || ApiError::bad_request("The provided next page token is invalid or has expired.");
    let raw = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| invalid())?;
    let text = String::from_utf8(raw).map_err(|_| invalid())?;
    let mut parts = text.split(':');
    let (Some("v1"), Some(offset), Some(hash), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    let offset = offset.parse::<usize>().map_err(|_| invalid())?;
    if hash != format!("{:016x}", fnv1a(jql.trim())) {
        return Err(ApiError::bad_request(
            "The provided next page token does not belong to this query: the JQL must not change between pages.",
        ));
    }
    Ok(offset)
}

/// Run a search request against the site.
pub fn run(site: &Site, req: &SearchRequest, now_ms: i64) -> ApiResult<Value> {
    let query = jql::parse(&req.jql).map_err(|e| ApiError::bad_request(e.0))?;
    let max = req.max_results.unwrap_or(50);
    if !(1..=5000).contains(&max) {
        return Err(ApiError::bad_request(
            "The max results parameter has to be between 1 and 5,000.",
        ));
    }
    let sel = FieldSel::parse(&req.fields);
    let heavy = sel.any(site) || req.expand.iter().any(|e| e == "changelog");
    let max = (max as usize).min(if heavy { 100 } else { 5000 });
    let offset = match &req.next_page_token {
        Some(t) => decode_token(&req.jql, t)?,
        None => 0,
    };
    let hits = jql::search(site, &query, now_ms).map_err(|e| ApiError::bad_request(e.0))?;
    let lo = offset.min(hits.len());
    let hi = offset.saturating_add(max).min(hits.len());
    let issues: Vec<Value> = hits[lo..hi]
        .iter()
        .map(|&i| render_issue(site, i, &sel, &req.expand))
        .collect();
    let is_last = hi >= hits.len();
    let mut m = Map::new();
    m.insert("issues".into(), Value::Array(issues));
    if req.expand.iter().any(|e| e == "names") {
        let names: Map<String, Value> = site
            .fields
            .iter()
            .filter(|f| sel.wants(f))
            .map(|f| (f.id.to_string(), json!(f.name)))
            .collect();
        m.insert("names".into(), Value::Object(names));
    }
    if req.expand.iter().any(|e| e == "schema") {
        let schema: Map<String, Value> = site
            .fields
            .iter()
            .filter(|f| sel.wants(f))
            .filter_map(|f| site.field_schema(f).map(|s| (f.id.to_string(), s)))
            .collect();
        m.insert("schema".into(), Value::Object(schema));
    }
    if !is_last {
        m.insert("nextPageToken".into(), json!(encode_token(&req.jql, hi)));
    }
    m.insert("isLast".into(), json!(is_last));
    Ok(Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_roundtrip_and_bind_to_query() {
        let t = encode_token("updated >= 0", 100);
        assert!(
            !t.starts_with("v1")
                && t.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{t}"
        );
        assert_eq!(decode_token("updated >= 0", &t), Ok(100));
        assert_eq!(decode_token(" updated >= 0 ", &t), Ok(100));
        assert_eq!(
            decode_token("updated >= 1", &t).map_err(|e| e.status.as_u16()),
            Err(400)
        );
        assert!(decode_token("updated >= 0", "garbage!").is_err());
    }

    #[test]
    fn field_selection() {
        let s = FieldSel::parse(&["*all,-comment".to_string(), "-worklog".to_string()]);
        assert!(s.all && s.given);
        assert_eq!(s.exclude, vec!["comment", "worklog"]);
        let d = FieldSel::parse(&[]);
        assert!(!d.given && !d.all);
    }
}
