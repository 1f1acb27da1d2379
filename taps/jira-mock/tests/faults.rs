//! Fault injection over real HTTP.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use jira_mock::MockConfig;
use serde_json::Value;

#[tokio::test]
async fn rate_limit_every_nth_with_headers_then_retry_succeeds() {
    let s = server(MockConfig {
        rate_limit_every: Some(2),
        retry_after_secs: 3,
        ..MockConfig::default()
    })
    .await;
    let c = client();
    let url = s.url("/rest/api/3/status");
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    let resp = c.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    let h = resp.headers();
    assert_eq!(h["retry-after"], "3");
    assert_eq!(h["x-ratelimit-remaining"], "0");
    assert_eq!(h["ratelimit-reason"], "jira-burst-based");
    assert!(
        h["x-ratelimit-limit"]
            .to_str()
            .unwrap()
            .parse::<u32>()
            .is_ok()
    );
    let reset = h["x-ratelimit-reset"].to_str().unwrap().to_string();
    assert!(
        chrono::NaiveDateTime::parse_from_str(&reset, "%Y-%m-%dT%H:%MZ").is_ok(),
        "{reset}"
    );
    // The retry is the next request number: it succeeds.
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    // Admin endpoints never get faults and do not advance the schedule.
    for _ in 0..3 {
        assert_eq!(
            c.get(s.url("/_mock/stats")).send().await.unwrap().status(),
            200
        );
    }
    assert_eq!(c.get(&url).send().await.unwrap().status(), 429);
    assert_eq!(s.fault_counts().rate_limited, 2);

    let s = server(MockConfig {
        rate_limit_every: Some(1),
        omit_retry_after: true,
        ..MockConfig::default()
    })
    .await;
    let resp = c.get(s.url("/rest/api/3/field")).send().await.unwrap();
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().get("retry-after").is_none());
    assert!(resp.headers().get("x-ratelimit-reset").is_some());
}

#[tokio::test]
async fn error_bursts_cycle_through_5xx() {
    let s = server(MockConfig {
        error_burst_every: Some(3),
        error_burst_len: 2,
        ..MockConfig::default()
    })
    .await;
    let c = client();
    let mut codes = Vec::new();
    let mut retry_after_on_503 = false;
    for _ in 0..7 {
        let resp = c.get(s.url("/rest/api/3/field")).send().await.unwrap();
        if resp.status() == 503 {
            retry_after_on_503 = resp.headers().get("retry-after").is_some();
        }
        codes.push(resp.status().as_u16());
    }
    assert_eq!(codes, vec![200, 200, 500, 502, 200, 503, 504]);
    assert!(retry_after_on_503);
    assert_eq!(s.fault_counts().server_errors, 4);
}

#[tokio::test]
async fn reset_closes_the_connection_without_a_response() {
    let s = server(MockConfig {
        reset_every: Some(3),
        ..MockConfig::default()
    })
    .await;
    let c = client();
    let url = s.url("/rest/api/3/priority/search");
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    let err = c
        .get(&url)
        .send()
        .await
        .expect_err("third request must fail");
    assert!(!err.is_status() && !err.is_timeout(), "{err:?}");
    // The retry (request 4) works, on a fresh connection.
    let resp = c.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["total"], 5);
    assert_eq!(s.fault_counts().resets, 1);
}

#[tokio::test]
async fn truncate_sends_well_formed_http_with_half_the_json() {
    let s = server(MockConfig {
        truncate_every: Some(2),
        ..MockConfig::default()
    })
    .await;
    let c = client();
    let url = s.url("/rest/api/3/field");
    let full = c.get(&url).send().await.unwrap().bytes().await.unwrap();
    assert!(serde_json::from_slice::<Value>(&full).is_ok());
    let resp = c.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let len: usize = resp.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let half = resp.bytes().await.unwrap();
    assert_eq!(half.len(), len);
    assert_eq!(half.len(), full.len() / 2);
    assert!(serde_json::from_slice::<Value>(&half).is_err());
    assert_eq!(&full[..half.len()], &half[..]);
    // Next request is whole again.
    assert!(
        c.get(&url)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .is_ok()
    );
    assert_eq!(s.fault_counts().truncated, 1);
}

#[tokio::test]
async fn cut_closes_the_connection_mid_body() {
    let s = server(MockConfig {
        cut_every: Some(2),
        ..MockConfig::default()
    })
    .await;
    let c = client();
    let url = s.url("/rest/api/3/field");
    let full = c.get(&url).send().await.unwrap().bytes().await.unwrap();
    let resp = c.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let announced: usize = resp.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(announced, full.len());
    assert!(resp.bytes().await.is_err(), "body read must fail");
    assert!(
        c.get(&url)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .is_ok()
    );
    assert_eq!(s.fault_counts().cut, 1);
}

#[tokio::test]
async fn slow_requests_are_delayed() {
    let s = server(MockConfig {
        slow_every: Some(2),
        slow_ms: 300,
        ..MockConfig::default()
    })
    .await;
    let c = client();
    let url = s.url("/rest/api/3/status");
    let t = Instant::now();
    c.get(&url).send().await.unwrap();
    assert!(t.elapsed() < Duration::from_millis(300));
    let t = Instant::now();
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    assert!(t.elapsed() >= Duration::from_millis(300));
    let stats = get_json(&c, &s.url("/_mock/stats")).await;
    assert_eq!(stats["faults"]["slowed"], 1);
    assert_eq!(stats["requests_by_route"]["/rest/api/3/status"], 2);
    assert_eq!(stats["data_requests"], 2);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let s = server(MockConfig::default()).await;
    let c = client();
    let url = s.url("/rest/api/3/status");
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    s.shutdown().await;
    let fresh = client();
    assert!(fresh.get(&url).send().await.is_err());
}
