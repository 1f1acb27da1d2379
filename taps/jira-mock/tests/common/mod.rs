//! Shared helpers for the integration tests.
#![allow(dead_code, clippy::unwrap_used)]

use chrono::DateTime;
use jira_mock::{MockConfig, MockServer};
use serde_json::Value;

/// A reqwest client (plain HTTP; rustls needs a process-wide provider anyway).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().build().unwrap()
}

pub async fn server(config: MockConfig) -> MockServer {
    jira_mock::start(config).await.unwrap()
}

pub async fn get_json(c: &reqwest::Client, url: &str) -> Value {
    let resp = c.get(url).send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    assert_eq!(status, 200, "GET {url}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// `2024-01-15T10:23:45.123+0000` → epoch ms.
pub fn jira_ms(s: &str) -> i64 {
    DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.3f%z")
        .unwrap_or_else(|e| panic!("bad Jira timestamp {s}: {e}"))
        .timestamp_millis()
}

/// Key order: project key, then issue number.
pub fn key_order(key: &str) -> (String, u64) {
    let (p, n) = key.rsplit_once('-').unwrap();
    (p.to_string(), n.parse().unwrap())
}

/// Page through a search; returns every issue object in order.
pub async fn search_all(
    c: &reqwest::Client,
    base: &str,
    jql: &str,
    fields: &str,
    max: u32,
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut q = vec![
            ("jql".to_string(), jql.to_string()),
            ("maxResults".to_string(), max.to_string()),
            ("fields".to_string(), fields.to_string()),
        ];
        if let Some(t) = &token {
            q.push(("nextPageToken".to_string(), t.clone()));
        }
        let resp = c
            .get(format!("{base}/rest/api/3/search/jql"))
            .query(&q)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let page: Value = resp.json().await.unwrap();
        out.extend(page["issues"].as_array().unwrap().iter().cloned());
        let is_last = page["isLast"].as_bool().unwrap();
        match page.get("nextPageToken").and_then(Value::as_str) {
            Some(t) => {
                assert!(!is_last);
                token = Some(t.to_string());
            }
            None => {
                assert!(is_last);
                break;
            }
        }
    }
    out
}
