//! `/search/jql`: ordering, the epoch-ms boundary, tokens, POST, touch, embedded
//! changelogs.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use common::*;
use jira_mock::MockConfig;
use serde_json::{Value, json};

fn updated(i: &Value) -> i64 {
    jira_ms(i["fields"]["updated"].as_str().unwrap())
}

#[tokio::test]
async fn sorted_by_updated_then_key_with_inclusive_boundary() {
    let s = server(MockConfig::default()).await;
    let c = client();
    let all = search_all(
        &c,
        s.base_url(),
        "updated >= 0 ORDER BY updated ASC, id ASC",
        "updated,key",
        25,
    )
    .await;
    assert_eq!(all.len(), 120);
    for w in all.windows(2) {
        let a = (updated(&w[0]), key_order(w[0]["key"].as_str().unwrap()));
        let b = (updated(&w[1]), key_order(w[1]["key"].as_str().unwrap()));
        assert!(a < b, "not sorted: {a:?} then {b:?}");
    }
    // The mock's own view agrees with the rendered timestamps (offsets included).
    for i in &all {
        assert_eq!(
            Some(updated(i)),
            s.issue_updated_ms(i["key"].as_str().unwrap())
        );
    }
    assert!(
        all.iter()
            .any(|i| !i["fields"]["updated"].as_str().unwrap().ends_with("+0000"))
    );

    // Pick a tied instant: several issues share it.
    let mut by_ms: HashMap<i64, Vec<String>> = HashMap::new();
    for i in &all {
        by_ms
            .entry(updated(i))
            .or_default()
            .push(i["key"].as_str().unwrap().to_string());
    }
    let (&tie, keys) = by_ms
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .min_by_key(|(ms, _)| **ms)
        .unwrap();
    let expect_ge = all.iter().filter(|i| updated(i) >= tie).count();
    let ge = search_all(
        &c,
        s.base_url(),
        &format!("updated >= {tie} ORDER BY updated ASC, key ASC"),
        "updated,key",
        50,
    )
    .await;
    assert_eq!(ge.len(), expect_ge);
    let first: Vec<&str> = ge[..keys.len()]
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    let mut sorted_keys = keys.clone();
    sorted_keys.sort_by_key(|k| key_order(k));
    assert_eq!(
        first,
        sorted_keys.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let gt = search_all(
        &c,
        s.base_url(),
        &format!("updated > {tie} ORDER BY updated ASC"),
        "updated",
        50,
    )
    .await;
    assert_eq!(gt.len(), expect_ge - keys.len());
    let lt = search_all(&c, s.base_url(), &format!("updated < {tie}"), "updated", 50).await;
    assert_eq!(lt.len() + ge.len(), 120);
    let le = search_all(
        &c,
        s.base_url(),
        &format!("updated <= {tie}"),
        "updated",
        50,
    )
    .await;
    assert_eq!(le.len(), lt.len() + keys.len());

    // DESC reverses.
    let desc = search_all(
        &c,
        s.base_url(),
        "updated >= 0 ORDER BY updated DESC, key DESC",
        "updated,key",
        100,
    )
    .await;
    let mut rev = all.clone();
    rev.reverse();
    assert_eq!(
        desc.iter().map(|i| &i["key"]).collect::<Vec<_>>(),
        rev.iter().map(|i| &i["key"]).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn filters_project_status_type_and_dates() {
    let s = server(MockConfig::default()).await;
    let c = client();
    let fields = "project,status,issuetype,created";
    let two = search_all(
        &c,
        s.base_url(),
        "project in (ALPHA, \"BETA\") AND updated >= 0",
        fields,
        100,
    )
    .await;
    assert_eq!(two.len(), 80);
    assert!(two.iter().all(|i| i["fields"]["project"]["key"] != "GAMMA"));
    let one = search_all(
        &c,
        s.base_url(),
        "project = gamma AND updated >= 0",
        fields,
        100,
    )
    .await;
    assert_eq!(one.len(), 40);
    let prog = search_all(
        &c,
        s.base_url(),
        "status = \"In Progress\" AND project = ALPHA",
        fields,
        100,
    )
    .await;
    assert!(!prog.is_empty() && prog.len() < 40);
    assert!(
        prog.iter()
            .all(|i| i["fields"]["status"]["name"] == "In Progress")
    );
    let epics = search_all(&c, s.base_url(), "issuetype = Epic", fields, 100).await;
    assert_eq!(epics.len(), 3);
    let not_epics = search_all(
        &c,
        s.base_url(),
        "project = ALPHA AND NOT issuetype = Epic",
        fields,
        100,
    )
    .await;
    assert_eq!(not_epics.len(), 39);
    let either = search_all(
        &c,
        s.base_url(),
        "(project = ALPHA OR project = BETA) AND issuetype = Epic",
        fields,
        100,
    )
    .await;
    assert_eq!(either.len(), 2);
    // Quoted dates are minute precision, UTC.
    let h1 = search_all(
        &c,
        s.base_url(),
        "created < \"2024-07-01 00:00\"",
        fields,
        100,
    )
    .await;
    let cutoff = jira_ms("2024-07-01T00:00:00.000+0000");
    assert!(!h1.is_empty());
    assert!(
        h1.iter()
            .all(|i| jira_ms(i["fields"]["created"].as_str().unwrap()) < cutoff)
    );
    let h2 = search_all(
        &c,
        s.base_url(),
        "created >= \"2024/07/01 00:00\"",
        fields,
        100,
    )
    .await;
    assert_eq!(h1.len() + h2.len(), 120);
    let keyed = search_all(&c, s.base_url(), "key in (ALPHA-1, BETA-2)", fields, 100).await;
    assert_eq!(keyed.len(), 2);
}

#[tokio::test]
async fn tokens_are_opaque_bound_to_the_query_and_work_with_post() {
    let s = server(MockConfig::default()).await;
    let c = client();
    let jql = "updated >= 0 ORDER BY updated ASC, key ASC";
    let url = s.url("/rest/api/3/search/jql");
    let p1: Value = c
        .get(&url)
        .query(&[("jql", jql), ("maxResults", "10"), ("fields", "key")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = p1["nextPageToken"].as_str().unwrap().to_string();
    assert!(
        !token.chars().all(|ch| ch.is_ascii_digit()),
        "token must not be a bare offset"
    );
    // POST with the same JQL continues where GET stopped.
    let body = json!({"jql": jql, "nextPageToken": token, "maxResults": 10, "fields": ["key"], "expand": "changelog"});
    let p2: Value = c
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let k1: Vec<&Value> = p1["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["key"])
        .collect();
    let k2: Vec<&Value> = p2["issues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| &i["key"])
        .collect();
    assert_eq!(k2.len(), 10);
    assert!(k2.iter().all(|k| !k1.contains(k)));
    assert!(p2["issues"][0]["changelog"]["histories"].is_array());
    let all = search_all(&c, s.base_url(), jql, "key", 100).await;
    assert_eq!(all[10]["key"], *k2[0]);

    // A token used with other JQL is rejected.
    let resp = c
        .get(&url)
        .query(&[("jql", "updated >= 1"), ("nextPageToken", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let err: Value = resp.json().await.unwrap();
    assert!(!err["errorMessages"].as_array().unwrap().is_empty());
    // Garbage tokens too.
    let resp = c
        .get(&url)
        .query(&[("jql", jql), ("nextPageToken", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Unknown POST properties and array-valued expand are 400.
    let resp = c
        .post(&url)
        .json(&json!({"jql": jql, "bogus": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let resp = c
        .post(&url)
        .json(&json!({"jql": jql, "expand": ["changelog"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // maxResults out of range.
    let resp = c
        .get(&url)
        .query(&[("jql", jql), ("maxResults", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test]
async fn embedded_changelog_is_capped_newest_first() {
    let s = server(MockConfig::default()).await;
    let c = client();
    let totals = s.totals();
    assert!(totals.issues_with_truncated_changelog >= 2, "{totals:?}");
    let body = json!({"jql": "updated >= 0 ORDER BY key ASC", "maxResults": 100, "fields": ["*all"], "expand": "changelog"});
    let mut truncated = 0;
    let mut token: Option<String> = None;
    loop {
        let mut b = body.clone();
        if let Some(t) = &token {
            b["nextPageToken"] = json!(t);
        }
        let page: Value = c
            .post(s.url("/rest/api/3/search/jql"))
            .json(&b)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for issue in page["issues"].as_array().unwrap() {
            let cl = &issue["changelog"];
            let total = cl["total"].as_u64().unwrap() as usize;
            let hist = cl["histories"].as_array().unwrap();
            assert_eq!(hist.len(), total.min(40));
            assert_eq!(cl["maxResults"].as_u64().unwrap() as usize, hist.len());
            let times: Vec<i64> = hist
                .iter()
                .map(|h| jira_ms(h["created"].as_str().unwrap()))
                .collect();
            assert!(
                times.windows(2).all(|w| w[0] >= w[1]),
                "embedded histories must be newest first"
            );
            if total > hist.len() {
                truncated += 1;
                let key = issue["key"].as_str().unwrap();
                let full = get_json(
                    &c,
                    &s.url(&format!("/rest/api/3/issue/{key}/changelog?maxResults=100")),
                )
                .await;
                assert_eq!(full["total"].as_u64().unwrap() as usize, total);
                // The newest embedded history is the last one of the full list.
                let values = full["values"].as_array().unwrap();
                assert_eq!(values.last().unwrap()["id"], hist[0]["id"]);
            }
        }
        match page.get("nextPageToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(truncated, totals.issues_with_truncated_changelog);
}

#[tokio::test]
async fn touch_makes_only_touched_issues_match_a_later_query() {
    let s = server(MockConfig::default()).await;
    let c = client();
    let all = search_all(&c, s.base_url(), "updated >= 0", "updated", 100).await;
    let max = all.iter().map(updated).max().unwrap();
    let before = search_all(
        &c,
        s.base_url(),
        &format!("updated > {max}"),
        "updated",
        100,
    )
    .await;
    assert!(before.is_empty());
    let totals_before = s.totals();
    let comments_before = get_json(&c, &s.url("/rest/api/3/issue/ALPHA-1/comment")).await["total"]
        .as_u64()
        .unwrap();

    let resp: Value = c
        .post(s.url("/_mock/touch?count=3"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(resp["touched"], json!(["ALPHA-1", "ALPHA-2", "ALPHA-3"]));
    assert!(resp["updated"].as_str().unwrap().ends_with("+0000"));
    let touched_ms = resp["updated_ms"].as_i64().unwrap();

    let after = search_all(
        &c,
        s.base_url(),
        &format!("updated >= {} ORDER BY key ASC", max + 1),
        "updated,key",
        100,
    )
    .await;
    let keys: Vec<&str> = after.iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(keys, vec!["ALPHA-1", "ALPHA-2", "ALPHA-3"]);
    assert!(after.iter().all(|i| updated(i) == touched_ms));
    let comments_after = get_json(&c, &s.url("/rest/api/3/issue/ALPHA-1/comment")).await["total"]
        .as_u64()
        .unwrap();
    assert_eq!(comments_after, comments_before + 1);

    // By key, through the handle.
    assert_eq!(s.touch_keys(&["GAMMA-5"]).unwrap(), vec!["GAMMA-5"]);
    assert!(s.touch_keys(&["NOPE-1"]).is_err());
    let later = search_all(
        &c,
        s.base_url(),
        &format!("updated >= {touched_ms}"),
        "key",
        100,
    )
    .await;
    assert_eq!(later.len(), 4);
    assert_eq!(s.totals().comments, totals_before.comments + 4);
    let site = get_json(&c, &s.url("/_mock/site")).await;
    assert_eq!(site["touched"], 4);
    assert_eq!(site["issues"], 120);
}
