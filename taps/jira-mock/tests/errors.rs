//! Auth, 403/404, kanban sprints, bad JQL.
#![allow(clippy::unwrap_used)]

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::*;
use jira_mock::MockConfig;
use serde_json::{Value, json};

const TOKEN: &str = "s3cr3t-api-token-value";

#[tokio::test]
async fn unauthenticated_requests_get_401_without_echoing_credentials() {
    let s = server(
        MockConfig::default()
            .with_basic_auth("bot@example.com", TOKEN)
            .with_bearer("oauth-access-token"),
    )
    .await;
    let c = client();
    let url = s.url("/rest/api/3/myself");

    let resp = c.get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["errorMessages"][0],
        "Client must be authenticated to access this resource."
    );

    let wrong = format!(
        "Basic {}",
        STANDARD.encode(format!("bot@example.com:{TOKEN}-wrong"))
    );
    let resp = c
        .get(&url)
        .header("Authorization", &wrong)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let text = resp.text().await.unwrap();
    assert!(
        !text.contains(TOKEN) && !text.contains("bot@example.com") && !text.contains(&wrong[6..])
    );

    let resp = c
        .get(&url)
        .basic_auth("bot@example.com", Some(TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers().get("x-aaccountid").is_some());
    let me: Value = resp.json().await.unwrap();
    assert!(me["accountId"].is_string());

    let resp = c
        .get(&url)
        .bearer_auth("oauth-access-token")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = c.get(&url).bearer_auth("other").send().await.unwrap();
    assert_eq!(resp.status(), 401);

    // Admin endpoints need no auth.
    let resp = c.get(s.url("/_mock/site")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // Unauthenticated requests are counted (path + status).
    let stats = s.stats();
    assert_eq!(stats.requests_by_path["/rest/api/3/myself"], 5);
    assert_eq!(stats.responses_by_status["401"], 3);
}

#[tokio::test]
async fn forbidden_prefix_gives_403_and_unknown_things_404() {
    let s = server(MockConfig {
        forbidden_paths: vec!["/rest/api/3/users".into()],
        ..MockConfig::default()
    })
    .await;
    let c = client();
    let resp = c
        .get(s.url("/rest/api/3/users/search"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["errorMessages"][0]
            .as_str()
            .unwrap()
            .contains("don't have access")
    );
    assert_eq!(
        c.get(s.url("/rest/api/3/field"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let resp = c
        .get(s.url("/rest/api/3/issue/NOPE-1/comment"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"errorMessages": ["Issue does not exist or you do not have permission to see it."], "errors": {}})
    );
    for path in [
        "/rest/api/3/issue/99999/worklog",
        "/rest/api/3/issue/ALPHA-999/changelog",
        "/rest/agile/1.0/board/999/sprint",
        "/rest/api/3/nothing",
    ] {
        assert_eq!(
            c.get(s.url(path)).send().await.unwrap().status(),
            404,
            "{path}"
        );
    }
    // Ids work as well as keys, case-insensitively.
    let by_key = get_json(&c, &s.url("/rest/api/3/issue/alpha-1/comment")).await;
    let by_id = get_json(&c, &s.url("/rest/api/3/issue/10001/comment")).await;
    assert_eq!(by_key, by_id);
    // Bad paging params.
    assert_eq!(
        c.get(s.url("/rest/api/3/project/search?startAt=-1"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        c.get(s.url("/rest/api/3/project/search?maxResults=x"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
}

#[tokio::test]
async fn kanban_board_sprints_are_400() {
    let s = server(MockConfig::default()).await;
    let c = client();
    let page = get_json(&c, &s.url("/rest/agile/1.0/board?type=kanban")).await;
    let boards = page["values"].as_array().unwrap();
    assert_eq!(boards.len(), 1);
    let id = boards[0]["id"].as_i64().unwrap();
    let resp = c
        .get(s.url(&format!("/rest/agile/1.0/board/{id}/sprint")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({"errorMessages": ["The board does not support sprints"], "errors": {}})
    );
    // A scrum board is fine.
    let page = get_json(&c, &s.url("/rest/agile/1.0/board/1/sprint")).await;
    assert!(!page["values"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn unsupported_or_bad_jql_is_400_with_error_messages() {
    let s = server(MockConfig::default()).await;
    let c = client();
    let url = s.url("/rest/api/3/search/jql");
    for (jql, needle) in [
        ("", "Unbounded"),
        ("ORDER BY updated ASC", "Unbounded"),
        ("assignee = currentUser()", "does not support"),
        ("summary ~ \"checkout\"", "does not support"),
        ("project = NOPE", "does not exist for the field 'project'"),
        ("foo = bar", "Field 'foo' does not exist"),
        ("updated >= yesterday", "Date value 'yesterday'"),
        ("project = ALPHA AND (updated >= 0", "Expecting ')'"),
        ("updated >= 0 ORDER BY priority", "cannot sort"),
    ] {
        let resp = c.get(&url).query(&[("jql", jql)]).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{jql}");
        let body: Value = resp.json().await.unwrap();
        let msg = body["errorMessages"][0].as_str().unwrap_or_default();
        assert!(msg.contains(needle), "{jql}: {msg}");
        assert_eq!(body["errors"], json!({}));
        // POST behaves the same.
        let resp = c
            .post(&url)
            .json(&json!({"jql": jql}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "POST {jql}");
    }
}
