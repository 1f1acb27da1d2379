//! The Jira streams.

use std::sync::Arc;

use serde_json::Value;
use singer_core::message::Record;
use singer_core::time::parse_datetime;
use singer_tap::{
    Context, OffsetPaginator, Page, PageRequest, RestClient, RestStream, Result, SinglePage,
    Stream, StreamInfo, TokenPaginator, async_trait, extract_records,
};

use crate::config::Config;

macro_rules! schema {
    ($name:literal) => {
        StreamInfo::from_json(
            $name,
            include_str!(concat!("../../../schemas/jira/", $name, ".json")),
        )
    };
}

/// Every stream, parents before children.
pub fn all(client: Arc<RestClient>, config: &Config) -> Vec<Arc<dyn Stream>> {
    let page = config.tap.page_size.max(1);
    let c = || client.clone();
    let mut projects = RestStream::builder(
        schema!("projects").with_keys(&["id"]),
        c(),
        "/rest/api/3/project/search",
    )
    .records_at("/values")
    .param(
        "expand",
        "description,lead,issueTypes,url,projectKeys,insight",
    )
    .paginator(OffsetPaginator::jira(page.min(100)));
    for key in &config.projects {
        projects = projects.param("keys", key);
    }
    vec![
        Arc::new(
            RestStream::builder(
                schema!("users").with_keys(&["accountId"]),
                c(),
                "/rest/api/3/users/search",
            )
            .paginator(OffsetPaginator {
                is_last_pointer: None,
                total_pointer: None,
                ..OffsetPaginator::jira(page)
            })
            .build(),
        ),
        Arc::new(
            RestStream::builder(
                schema!("fields").with_keys(&["id"]),
                c(),
                "/rest/api/3/field",
            )
            .paginator(SinglePage)
            .build(),
        ),
        Arc::new(projects.build()),
        Arc::new(
            RestStream::builder(
                schema!("statuses").with_keys(&["id"]),
                c(),
                "/rest/api/3/status",
            )
            .paginator(SinglePage)
            .build(),
        ),
        Arc::new(
            RestStream::builder(
                schema!("priorities").with_keys(&["id"]),
                c(),
                "/rest/api/3/priority/search",
            )
            .records_at("/values")
            .paginator(OffsetPaginator::jira(page.min(100)))
            .build(),
        ),
        Arc::new(issues(
            c(),
            IssueQuery {
                projects: config.projects.clone(),
                jql: config.jql.clone().filter(|j| !j.trim().is_empty()),
            },
            page.min(100),
        )),
        Arc::new(issue_child(
            schema!("issue_comments").with_replication_key("updated", false),
            c(),
            "/rest/api/3/issue/{issue_id}/comment",
            "/comments",
            page,
        )),
        Arc::new(Changelogs {
            inner: issue_child(
                schema!("issue_changelogs").with_replication_key("created", false),
                c(),
                "/rest/api/3/issue/{issue_id}/changelog",
                "/values",
                page,
            ),
        }),
        Arc::new(issue_child(
            schema!("issue_worklogs").with_replication_key("updated", false),
            c(),
            "/rest/api/3/issue/{issue_id}/worklog",
            "/worklogs",
            page,
        )),
        Arc::new(Agile {
            inner: RestStream::builder(schema!("boards").with_keys(&["id"]), c(), AGILE_PATH)
                .records_at("/values")
                .paginator(OffsetPaginator::jira(page.min(50)))
                .child_context(|board, _| {
                    // Only scrum boards have sprints; Jira answers 400 for the others.
                    (board.get("type").and_then(Value::as_str) == Some("scrum")).then(|| {
                        context(&[("board_id", board.get("id").cloned().unwrap_or(Value::Null))])
                    })
                })
                .build(),
            client: c(),
        }),
        Arc::new(
            RestStream::builder(
                schema!("sprints")
                    .with_keys(&["board_id", "id"])
                    .with_parent("boards"),
                c(),
                "/rest/agile/1.0/board/{board_id}/sprint",
            )
            .records_at("/values")
            .paginator(OffsetPaginator::jira(page.min(50)))
            .map_record(|mut sprint, ctx| {
                if let Some(ctx) = ctx {
                    sprint.insert(
                        "board_id".into(),
                        ctx.get("board_id").cloned().unwrap_or(Value::Null),
                    );
                }
                Some(sprint)
            })
            .build(),
        ),
    ]
}

fn context(pairs: &[(&str, Value)]) -> Context {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// A child of `issues`: one request series per issue; rows carry `issue_id` and `issue_key`.
fn issue_child(
    info: StreamInfo,
    client: Arc<RestClient>,
    path: &str,
    pointer: &str,
    page: usize,
) -> RestStream {
    let info = info
        .with_keys(&["id"])
        .with_parent("issues")
        .with_state_partitioning_keys(&["issue_id"]);
    RestStream::builder(info, client, path)
        .records_at(pointer)
        .paginator(OffsetPaginator {
            is_last_pointer: Some("/isLast".into()),
            ..OffsetPaginator::jira(page.min(100))
        })
        .map_record(|mut row, ctx| {
            if let Some(ctx) = ctx {
                for key in ["issue_id", "issue_key"] {
                    row.insert(key.into(), ctx.get(key).cloned().unwrap_or(Value::Null));
                }
            }
            Some(row)
        })
        .build()
}

/// The JQL of the `issues` stream: the user's filters, and the sync window's bounds.
struct IssueQuery {
    projects: Vec<String>,
    jql: Option<String>,
}

impl IssueQuery {
    /// The JQL for a sync window: exact epoch-millisecond bounds, stable order.
    fn jql(&self, since: Option<&Value>, until: Option<&Value>) -> String {
        let millis = |v: Option<&Value>| {
            v.and_then(Value::as_str)
                .and_then(|s| parse_datetime(s).ok())
                .map(|t| t.timestamp_millis())
        };
        let mut clauses = vec![format!("updated >= {}", millis(since).unwrap_or(0))];
        if let Some(until) = millis(until) {
            clauses.push(format!("updated <= {until}"));
        }
        if !self.projects.is_empty() {
            let keys: Vec<String> = self
                .projects
                .iter()
                .map(|p| format!("\"{}\"", p.replace('"', "\\\"")))
                .collect();
            clauses.push(format!("project in ({})", keys.join(", ")));
        }
        if let Some(extra) = &self.jql {
            clauses.push(format!("({extra})"));
        }
        format!("{} ORDER BY updated ASC, id ASC", clauses.join(" AND "))
    }
}

/// Issues, from `/rest/api/3/search/jql` with `nextPageToken` paging, the JQL bounds from
/// each page request's window.
fn issues(client: Arc<RestClient>, query: IssueQuery, page_size: usize) -> RestStream {
    let info = schema!("issues")
        .with_keys(&["id"])
        .with_replication_key("updated", true);
    RestStream::builder(info, client, "/rest/api/3/search/jql")
        .records_at("/issues")
        .param("maxResults", page_size)
        .param("fields", "*all")
        .param("expand", "changelog")
        .params_fn(move |request| vec![("jql".into(), query.jql(request.since, request.until))])
        .paginator(TokenPaginator::new(
            "nextPageToken",
            "/nextPageToken",
            Some("/isLast"),
        ))
        .map_record(|issue, _| Some(lift_dates(issue)))
        .child_context(|issue, _| Some(issue_context(issue)))
        .build()
}

/// `updated` and `created` are copied to the top level: `updated` is the replication key.
fn lift_dates(mut issue: Record) -> Record {
    for key in ["updated", "created"] {
        let value = issue
            .get("fields")
            .and_then(|f| f.get(key))
            .cloned()
            .unwrap_or(Value::Null);
        issue.insert(key.into(), value);
    }
    issue
}

/// The context of an issue's children; a complete embedded changelog is passed on, so the
/// changelog child needs no request.
fn issue_context(issue: &Record) -> Context {
    let mut ctx = context(&[
        ("issue_id", issue.get("id").cloned().unwrap_or(Value::Null)),
        (
            "issue_key",
            issue.get("key").cloned().unwrap_or(Value::Null),
        ),
    ]);
    if let Some(log) = issue.get("changelog") {
        let histories = log.get("histories").and_then(Value::as_array);
        let total = log.get("total").and_then(Value::as_u64);
        if let (Some(h), Some(total)) = (histories, total)
            && h.len() as u64 >= total
        {
            ctx.insert(EMBEDDED.into(), Value::Array(h.clone()));
        }
    }
    ctx
}

/// Boards, from the Agile API, which only sites with Jira Software have: elsewhere it
/// answers 404. Discovery leaves boards and sprints out of the catalog there, and a sync
/// skips them with one warning instead of failing.
struct Agile {
    inner: RestStream,
    client: Arc<RestClient>,
}

const AGILE_PATH: &str = "/rest/agile/1.0/board";
const NO_JIRA_SOFTWARE: &str =
    "this site has no Jira Software (the Agile API answers 404): skipping boards and sprints";

#[async_trait]
impl Stream for Agile {
    fn info(&self) -> &StreamInfo {
        self.inner.info()
    }

    async fn available(&self) -> Result<bool> {
        let status = self
            .client
            .probe(AGILE_PATH, &[("maxResults".into(), "1".into())])
            .await?;
        if status == 404 {
            tracing::warn!("{NO_JIRA_SOFTWARE}");
        }
        Ok(status != 404)
    }

    async fn fetch_page(&self, request: PageRequest<'_>) -> Result<Page> {
        match self.inner.fetch_page(request).await {
            Err(e) if e.http_status() == Some(404) && request.position.is_none() => {
                tracing::warn!("{NO_JIRA_SOFTWARE}");
                Ok(Page::default())
            }
            other => other,
        }
    }

    fn child_context(&self, record: &Record, context: Option<&Context>) -> Option<Context> {
        self.inner.child_context(record, context)
    }

    fn post_process(&self, record: Record, context: Option<&Context>) -> Option<Record> {
        self.inner.post_process(record, context)
    }
}

const EMBEDDED: &str = "_embedded_changelog";

/// Changelogs: from the issue when Jira embedded all of them, else from the endpoint.
struct Changelogs {
    inner: RestStream,
}

#[async_trait]
impl Stream for Changelogs {
    fn info(&self) -> &StreamInfo {
        self.inner.info()
    }

    async fn fetch_page(&self, request: PageRequest<'_>) -> Result<Page> {
        if let Some(Value::Array(histories)) = request.context.and_then(|c| c.get(EMBEDDED)) {
            let mut body = Value::Array(histories.clone());
            return Ok(Page {
                records: extract_records(&mut body, "", &self.info().name),
                next: None,
            });
        }
        self.inner.fetch_page(request).await
    }

    fn post_process(&self, record: Record, context: Option<&Context>) -> Option<Record> {
        self.inner.post_process(record, context)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

    fn query(projects: &[&str], jql: Option<&str>) -> IssueQuery {
        IssueQuery {
            projects: projects.iter().map(|p| p.to_string()).collect(),
            jql: jql.map(str::to_string),
        }
    }

    #[test]
    fn jql_bounds_are_epoch_millis_whatever_the_offset() {
        let s = query(&["ALPHA", "BETA"], Some("issuetype = Bug"));
        let since = json!("2024-01-15T12:23:45.123+0200");
        let until = json!("2024-02-01T00:00:00Z");
        assert_eq!(
            s.jql(Some(&since), Some(&until)),
            "updated >= 1705314225123 AND updated <= 1706745600000 AND project in (\"ALPHA\", \"BETA\") AND (issuetype = Bug) ORDER BY updated ASC, id ASC"
        );
        assert_eq!(
            query(&[], None).jql(None, None),
            "updated >= 0 ORDER BY updated ASC, id ASC"
        );
    }

    #[test]
    fn issues_lift_updated_and_pass_complete_changelogs() {
        let client = Arc::new(
            RestClient::new("http://127.0.0.1:1", Default::default(), Default::default())
                .expect("client"),
        );
        let s = issues(client, query(&[], None), 100);
        let issue: Record = json!({"id": "1", "key": "A-1", "fields": {"updated": "2024-01-15T10:00:00.000+0000", "created": "2024-01-01T00:00:00.000+0000"},
            "changelog": {"total": 1, "histories": [{"id": "9"}]}}).as_object().cloned().unwrap_or_default();
        let issue = s.post_process(issue, None).unwrap_or_default();
        assert_eq!(issue["updated"], json!("2024-01-15T10:00:00.000+0000"));
        let ctx = s.child_context(&issue, None).unwrap_or_default();
        assert_eq!(ctx["issue_key"], json!("A-1"));
        assert_eq!(ctx[EMBEDDED], json!([{"id": "9"}]));
        let mut capped = issue.clone();
        capped.insert(
            "changelog".into(),
            json!({"total": 60, "histories": [{"id": "9"}]}),
        );
        assert!(
            s.child_context(&capped, None)
                .unwrap_or_default()
                .get(EMBEDDED)
                .is_none()
        );
    }

    #[test]
    fn every_schema_parses() {
        let config: Config = serde_json::from_value(
            json!({"domain": "x.atlassian.net", "email": "a@b.c", "api_token": "t"}),
        )
        .expect("config");
        let client = Arc::new(
            RestClient::new(&config.base_url(), Default::default(), Default::default())
                .expect("client"),
        );
        for s in all(client, &config) {
            let props = s
                .info()
                .schema
                .get("properties")
                .and_then(Value::as_object)
                .map(Map::len)
                .unwrap_or(0);
            assert!(props > 3, "{} has {props} properties", s.info().name);
        }
    }
}
