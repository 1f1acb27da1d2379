//! The Jira streams.

use std::sync::Arc;

use serde_json::Value;
use singer_core::Result;
use singer_core::message::Record;
use singer_core::tap::{
    Context, OffsetPaginator, Page, PageRequest, RestClient, RestStream, SinglePage, Stream,
    StreamInfo, TokenPaginator, async_trait, extract_records,
};
use singer_core::time::parse_datetime;

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
    let page = config.page_size.max(1);
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
        Arc::new(Issues {
            info: schema!("issues")
                .with_keys(&["id"])
                .with_replication_key("updated", true),
            client: c(),
            projects: config.projects.clone(),
            jql: config.jql.clone().filter(|j| !j.trim().is_empty()),
            page_size: page.min(100),
        }),
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
        Arc::new(
            RestStream::builder(
                schema!("boards").with_keys(&["id"]),
                c(),
                "/rest/agile/1.0/board",
            )
            .records_at("/values")
            .paginator(OffsetPaginator::jira(page.min(50)))
            .child_context(|board, _| {
                // Only scrum boards have sprints; Jira answers 400 for the others.
                (board.get("type").and_then(Value::as_str) == Some("scrum")).then(|| {
                    context(&[("board_id", board.get("id").cloned().unwrap_or(Value::Null))])
                })
            })
            .build(),
        ),
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

/// Issues, from `/rest/api/3/search/jql`.
struct Issues {
    info: StreamInfo,
    client: Arc<RestClient>,
    projects: Vec<String>,
    jql: Option<String>,
    page_size: usize,
}

impl Issues {
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

#[async_trait]
impl Stream for Issues {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    async fn fetch_page(&self, request: PageRequest<'_>) -> Result<Page> {
        use singer_core::tap::{Paginator, RequestSpec};
        let mut spec = RequestSpec {
            query: vec![
                ("jql".into(), self.jql(request.since, request.until)),
                ("maxResults".into(), self.page_size.to_string()),
                ("fields".into(), "*all".into()),
                ("expand".into(), "changelog".into()),
            ],
            url: None,
        };
        let paginator = TokenPaginator::new("nextPageToken", "/nextPageToken", Some("/isLast"));
        paginator.apply(request.position, &mut spec);
        let mut response = self
            .client
            .get(
                "/rest/api/3/search/jql",
                &spec.query,
                "/rest/api/3/search/jql",
            )
            .await?;
        let records = extract_records(&mut response.body, "/issues", &self.info.name);
        let next = paginator.next(request.position, &response, records.len());
        Ok(Page { records, next })
    }

    /// `updated` and `created` are copied to the top level: `updated` is the replication key.
    fn post_process(&self, mut issue: Record, _: Option<&Context>) -> Option<Record> {
        for key in ["updated", "created"] {
            let value = issue
                .get("fields")
                .and_then(|f| f.get(key))
                .cloned()
                .unwrap_or(Value::Null);
            issue.insert(key.into(), value);
        }
        Some(issue)
    }

    fn child_context(&self, issue: &Record, _: Option<&Context>) -> Option<Context> {
        let mut ctx = context(&[
            ("issue_id", issue.get("id").cloned().unwrap_or(Value::Null)),
            (
                "issue_key",
                issue.get("key").cloned().unwrap_or(Value::Null),
            ),
        ]);
        // Pass a complete embedded changelog on, so the child needs no request.
        if let Some(log) = issue.get("changelog") {
            let histories = log.get("histories").and_then(Value::as_array);
            let total = log.get("total").and_then(Value::as_u64);
            if let (Some(h), Some(total)) = (histories, total)
                && h.len() as u64 >= total
            {
                ctx.insert(EMBEDDED.into(), Value::Array(h.clone()));
            }
        }
        Some(ctx)
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

    fn issues(projects: &[&str], jql: Option<&str>) -> Issues {
        Issues {
            info: schema!("issues"),
            client: Arc::new(
                RestClient::new("http://127.0.0.1:1", Default::default(), Default::default())
                    .expect("client"),
            ),
            projects: projects.iter().map(|p| p.to_string()).collect(),
            jql: jql.map(str::to_string),
            page_size: 100,
        }
    }

    #[test]
    fn jql_bounds_are_epoch_millis_whatever_the_offset() {
        let s = issues(&["ALPHA", "BETA"], Some("issuetype = Bug"));
        let since = json!("2024-01-15T12:23:45.123+0200");
        let until = json!("2024-02-01T00:00:00Z");
        assert_eq!(
            s.jql(Some(&since), Some(&until)),
            "updated >= 1705314225123 AND updated <= 1706745600000 AND project in (\"ALPHA\", \"BETA\") AND (issuetype = Bug) ORDER BY updated ASC, id ASC"
        );
        assert_eq!(
            issues(&[], None).jql(None, None),
            "updated >= 0 ORDER BY updated ASC, id ASC"
        );
    }

    #[test]
    fn issues_lift_updated_and_pass_complete_changelogs() {
        let s = issues(&[], None);
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
