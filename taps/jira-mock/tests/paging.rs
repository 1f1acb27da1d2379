//! Every envelope family pages through its objects exactly once.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashSet;

use common::*;
use jira_mock::MockConfig;
use serde_json::Value;

#[tokio::test]
async fn bare_array_users_until_empty_page() {
    let s = server(MockConfig::default()).await;
    let c = client();
    let mut ids = Vec::new();
    let mut start = 0;
    loop {
        let page = get_json(
            &c,
            &s.url(&format!(
                "/rest/api/3/users/search?startAt={start}&maxResults=7"
            )),
        )
        .await;
        let arr = page.as_array().unwrap();
        if arr.is_empty() {
            break;
        }
        assert!(arr.len() <= 7);
        start += arr.len();
        ids.extend(
            arr.iter()
                .map(|u| u["accountId"].as_str().unwrap().to_string()),
        );
    }
    let unique: HashSet<_> = ids.iter().collect();
    assert_eq!(ids.len(), s.totals().users);
    assert_eq!(unique.len(), ids.len());
    // Some users hide their e-mail; some are apps.
    let all = get_json(&c, &s.url("/rest/api/3/users/search?maxResults=1000")).await;
    let all = all.as_array().unwrap();
    assert!(all.iter().any(|u| u.get("emailAddress").is_none()));
    assert!(all.iter().any(|u| u["accountType"] == "app"));
}

#[tokio::test]
async fn page_bean_projects_and_priorities() {
    let s = server(MockConfig::default()).await;
    let c = client();
    for (path, expected) in [
        ("/rest/api/3/project/search", s.totals().projects),
        ("/rest/api/3/priority/search", s.totals().priorities),
    ] {
        let mut seen = Vec::new();
        let mut start = 0;
        loop {
            let page = get_json(&c, &s.url(&format!("{path}?startAt={start}&maxResults=2"))).await;
            let values = page["values"].as_array().unwrap();
            assert_eq!(page["total"], expected);
            assert_eq!(page["maxResults"], 2);
            seen.extend(values.iter().map(|v| v["id"].as_str().unwrap().to_string()));
            start += values.len();
            if page["isLast"].as_bool().unwrap() {
                assert!(page.get("nextPage").is_none());
                break;
            }
            assert!(
                page["nextPage"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("startAt={start}"))
            );
        }
        let unique: HashSet<_> = seen.iter().collect();
        assert_eq!(seen.len(), expected, "{path}");
        assert_eq!(unique.len(), expected, "{path}");
    }
    // The cap is silently applied and echoed.
    let page = get_json(&c, &s.url("/rest/api/3/project/search?maxResults=1000")).await;
    assert_eq!(page["maxResults"], 100);
    // Projects come sorted by key, and expanded fields only appear when asked.
    let keys: Vec<&str> = page["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, vec!["ALPHA", "BETA", "GAMMA"]);
    assert!(page["values"][0].get("lead").is_none());
    let page = get_json(
        &c,
        &s.url("/rest/api/3/project/search?expand=description,lead,issueTypes,url,insight"),
    )
    .await;
    assert!(page["values"][0]["lead"]["accountId"].is_string());
    assert_eq!(page["values"][0]["insight"]["totalIssueCount"], 40);
}

#[tokio::test]
async fn legacy_and_changelog_pages_per_issue() {
    let s = server(MockConfig::default()).await;
    let c = client();
    let totals = s.totals();
    let mut comments = HashSet::new();
    let mut worklogs = HashSet::new();
    let mut histories = HashSet::new();
    let mut comment_rows = 0;
    for key in s.issue_keys() {
        // Family D: stop when startAt + len >= total.
        for (kind, field, seen) in [
            ("comment", "comments", &mut comments),
            ("worklog", "worklogs", &mut worklogs),
        ] {
            let mut start = 0;
            loop {
                let page = get_json(
                    &c,
                    &s.url(&format!(
                        "/rest/api/3/issue/{key}/{kind}?startAt={start}&maxResults=2"
                    )),
                )
                .await;
                assert!(page.get("isLast").is_none());
                let items = page[field].as_array().unwrap();
                for it in items {
                    assert!(
                        seen.insert(it["id"].as_str().unwrap().to_string()),
                        "duplicate {kind}"
                    );
                    if kind == "comment" {
                        comment_rows += 1;
                    }
                }
                start += items.len();
                if items.is_empty() || start >= page["total"].as_u64().unwrap() as usize {
                    break;
                }
            }
        }
        // Family C, oldest first.
        let mut start = 0;
        let mut last_created = i64::MIN;
        loop {
            let page = get_json(
                &c,
                &s.url(&format!(
                    "/rest/api/3/issue/{key}/changelog?startAt={start}&maxResults=500"
                )),
            )
            .await;
            assert_eq!(page["maxResults"], 100);
            let values = page["values"].as_array().unwrap();
            for h in values {
                assert!(histories.insert(h["id"].as_str().unwrap().to_string()));
                let t = jira_ms(h["created"].as_str().unwrap());
                assert!(t >= last_created, "changelog not oldest-first");
                last_created = t;
            }
            start += values.len();
            if page["isLast"].as_bool().unwrap() {
                break;
            }
        }
    }
    assert_eq!(comments.len(), totals.comments);
    assert_eq!(comment_rows, totals.comments);
    assert_eq!(worklogs.len(), totals.worklogs);
    assert_eq!(histories.len(), totals.changelogs);
    assert!(
        totals.comments > 100 && totals.worklogs > 50 && totals.changelogs > 300,
        "{totals:?}"
    );
}

#[tokio::test]
async fn agile_boards_and_sprints() {
    let s = server(MockConfig::default()).await;
    let c = client();
    let totals = s.totals();
    let mut boards: Vec<Value> = Vec::new();
    let mut start = 0;
    loop {
        let page = get_json(
            &c,
            &s.url(&format!(
                "/rest/agile/1.0/board?startAt={start}&maxResults=2"
            )),
        )
        .await;
        assert_eq!(page["total"], totals.boards);
        let values = page["values"].as_array().unwrap();
        boards.extend(values.iter().cloned());
        start += values.len();
        if page["isLast"].as_bool().unwrap() {
            break;
        }
    }
    assert_eq!(boards.len(), totals.boards);
    assert!(boards.iter().all(|b| b["id"].is_i64()));
    let mut rows = HashSet::new();
    for b in boards.iter().filter(|b| b["type"] == "scrum") {
        let id = b["id"].as_i64().unwrap();
        let mut start = 0;
        loop {
            let page = get_json(
                &c,
                &s.url(&format!(
                    "/rest/agile/1.0/board/{id}/sprint?startAt={start}&maxResults=2"
                )),
            )
            .await;
            assert!(page.get("total").is_none(), "sprint pages carry no total");
            let values = page["values"].as_array().unwrap();
            for sp in values {
                assert!(rows.insert((id, sp["id"].as_i64().unwrap())));
            }
            start += values.len();
            if page["isLast"].as_bool().unwrap() {
                break;
            }
        }
    }
    assert_eq!(rows.len(), totals.sprints);
    // One sprint is shared by two boards.
    assert!(totals.sprints > totals.sprints_unique);
}

#[tokio::test]
async fn search_pages_return_every_issue_once() {
    let s = server(MockConfig::default()).await;
    let c = client();
    let issues = search_all(
        &c,
        s.base_url(),
        "updated >= 0 ORDER BY updated ASC, id ASC",
        "*all",
        7,
    )
    .await;
    let ids: HashSet<_> = issues
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(issues.len(), s.issue_count());
    assert_eq!(ids.len(), s.issue_count());
    // maxResults above the cap: 100 per page with *all, more with ids only.
    let q = [
        ("jql", "updated >= 0"),
        ("maxResults", "1000"),
        ("fields", "*all"),
    ];
    let page: Value = c
        .get(s.url("/rest/api/3/search/jql"))
        .query(&q)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["issues"].as_array().unwrap().len(), 100);
    assert_eq!(page["isLast"], false);
    let q = [("jql", "updated >= 0"), ("maxResults", "1000")];
    let page: Value = c
        .get(s.url("/rest/api/3/search/jql"))
        .query(&q)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["issues"].as_array().unwrap().len(), 120);
    assert_eq!(page["isLast"], true);
    assert!(page.get("nextPageToken").is_none());
    // Default fields: id only.
    assert_eq!(page["issues"][0].as_object().unwrap().len(), 1);
}
