//! Query-string access and the paging envelopes (families B to E of the notes).

use serde_json::{Map, Value, json};

use crate::error::{ApiError, ApiResult};

/// Query parameters in request order; keys may repeat.
#[derive(Debug, Default, Clone)]
pub struct Params(pub Vec<(String, String)>);

impl Params {
    /// First value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// All values of `key`, each split on commas, trimmed, empty items dropped.
    pub fn list(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .flat_map(|(_, v)| v.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// An optional integer parameter; a malformed value is a 400.
    pub fn int(&self, key: &str) -> ApiResult<Option<i64>> {
        match self.get(key).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v.parse::<i64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "The '{key}' parameter must be an integer, got '{v}'."
                ))
            }),
        }
    }

    /// `startAt`/`maxResults` with a default page size and a silent cap.
    pub fn paging(&self, default_max: usize, cap: usize) -> ApiResult<Page> {
        let start = self.int("startAt")?.unwrap_or(0);
        let max = self.int("maxResults")?.unwrap_or(default_max as i64);
        if start < 0 {
            return Err(ApiError::bad_request(
                "The 'startAt' parameter must not be negative.",
            ));
        }
        if max < 0 {
            return Err(ApiError::bad_request(
                "The 'maxResults' parameter must not be negative.",
            ));
        }
        Ok(Page {
            start: start as usize,
            max: (max as usize).min(cap),
        })
    }
}

/// A requested window: `startAt` and the effective (capped) `maxResults`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub start: usize,
    pub max: usize,
}

impl Page {
    /// The index range of this page over `total` items.
    pub fn range(&self, total: usize) -> std::ops::Range<usize> {
        let lo = self.start.min(total);
        let hi = self.start.saturating_add(self.max).min(total);
        lo..hi
    }

    /// Family C (PageBean): `self`, `nextPage` (only when not last), `maxResults`,
    /// `startAt`, `total`, `isLast`, `values`. `url` is the absolute endpoint URL
    /// without a query.
    pub fn bean(&self, url: &str, total: usize, values: Vec<Value>) -> Value {
        let end = self.start + values.len();
        let is_last = end >= total;
        let mut m = Map::new();
        m.insert(
            "self".into(),
            json!(format!(
                "{url}?startAt={}&maxResults={}",
                self.start, self.max
            )),
        );
        if !is_last {
            m.insert(
                "nextPage".into(),
                json!(format!("{url}?startAt={end}&maxResults={}", self.max)),
            );
        }
        m.insert("maxResults".into(), json!(self.max));
        m.insert("startAt".into(), json!(self.start));
        m.insert("total".into(), json!(total));
        m.insert("isLast".into(), json!(is_last));
        m.insert("values".into(), Value::Array(values));
        Value::Object(m)
    }

    /// Family D (legacy): `startAt`, `maxResults`, `total`, `<key>`; no `isLast`.
    pub fn legacy(&self, key: &str, total: usize, values: Vec<Value>) -> Value {
        let mut m = Map::new();
        m.insert("startAt".into(), json!(self.start));
        m.insert("maxResults".into(), json!(self.max));
        m.insert("total".into(), json!(total));
        m.insert(key.into(), Value::Array(values));
        Value::Object(m)
    }

    /// Family E (Agile): `maxResults`, `startAt`, `total` (optional), `isLast`,
    /// `values`.
    pub fn agile(&self, total: usize, with_total: bool, values: Vec<Value>) -> Value {
        let is_last = self.start + values.len() >= total;
        let mut m = Map::new();
        m.insert("maxResults".into(), json!(self.max));
        m.insert("startAt".into(), json!(self.start));
        if with_total {
            m.insert("total".into(), json!(total));
        }
        m.insert("isLast".into(), json!(is_last));
        m.insert("values".into(), Value::Array(values));
        Value::Object(m)
    }
}
