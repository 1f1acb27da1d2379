//! HTTP routes: the Jira data endpoints and the `/_mock/*` admin endpoints.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, Uri};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::error::{ApiError, ApiResult};
use crate::params::Params;
use crate::search::{self, FieldSel, SearchRequest};
use crate::state::{AppState, Stats};
use crate::time::now_ms;
use crate::{auth, faults};

type St = State<Arc<AppState>>;
type Q = Query<Vec<(String, String)>>;

/// The full router: data routes (counted, fault-injected, authenticated), admin
/// routes (none of that), and a Jira-style 404 fallback.
pub fn router(state: Arc<AppState>) -> Router {
    let data = Router::new()
        .route("/rest/api/3/myself", get(myself))
        .route("/rest/api/3/users/search", get(users_search))
        .route("/rest/api/3/field", get(fields))
        .route("/rest/api/3/project/search", get(project_search))
        .route("/rest/api/3/status", get(statuses))
        .route("/rest/api/3/priority/search", get(priority_search))
        .route("/rest/api/3/priority", get(priorities))
        .route("/rest/api/3/search/jql", get(search_get).post(search_post))
        .route("/rest/api/3/issue/{issueIdOrKey}", get(issue))
        .route("/rest/api/3/issue/{issueIdOrKey}/comment", get(comments))
        .route("/rest/api/3/issue/{issueIdOrKey}/changelog", get(changelog))
        .route("/rest/api/3/issue/{issueIdOrKey}/worklog", get(worklogs));
    // Sites without Jira Software have no Agile API: its paths fall through to the 404.
    let data = if state.config.jira_software {
        data.route("/rest/agile/1.0/board", get(boards))
            .route("/rest/agile/1.0/board/{boardId}/sprint", get(sprints))
    } else {
        data
    };
    let data = data
        // Layers added later run first: count → faults → auth → handler.
        .route_layer(from_fn_with_state(state.clone(), auth::check))
        .route_layer(from_fn_with_state(state.clone(), faults::inject))
        .route_layer(from_fn_with_state(state.clone(), auth::count));
    // The Atlassian API gateway's path for OAuth apps: the same API under the cloud ID.
    let data = match &state.config.cloud_id {
        Some(id) => data.clone().nest(&format!("/ex/jira/{id}"), data),
        None => data,
    };
    let admin = Router::new()
        .route("/_mock/touch", post(touch))
        .route("/_mock/stats", get(stats))
        .route("/_mock/stats/reset", post(reset_stats))
        .route("/_mock/site", get(site_totals));
    Router::new()
        .merge(data)
        .merge(admin)
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(uri: Uri) -> Response {
    ApiError::not_found(format!("null for uri: {uri}")).into_response()
}

async fn myself(State(s): St) -> Json<Value> {
    let site = s.site();
    Json(site.user_full(0))
}

async fn users_search(State(s): St, Query(q): Q) -> ApiResult<Json<Value>> {
    let page = Params(q).paging(50, 1000)?;
    let site = s.site();
    let users: Vec<Value> = page
        .range(site.users.len())
        .map(|i| site.user_full(i))
        .collect();
    Ok(Json(Value::Array(users)))
}

async fn fields(State(s): St) -> Json<Value> {
    let site = s.site();
    Json(Value::Array(
        site.fields.iter().map(|f| site.field_json(f)).collect(),
    ))
}

async fn statuses(State(s): St) -> Json<Value> {
    let site = s.site();
    Json(Value::Array(
        (0..site.statuses.len())
            .map(|i| site.status_json(i))
            .collect(),
    ))
}

async fn priorities(State(s): St) -> Json<Value> {
    let site = s.site();
    Json(Value::Array(
        (0..site.priorities.len())
            .map(|i| site.priority_json(i))
            .collect(),
    ))
}

async fn priority_search(State(s): St, Query(q): Q) -> ApiResult<Json<Value>> {
    let page = Params(q).paging(50, 100)?;
    let site = s.site();
    let total = site.priorities.len();
    let values = page.range(total).map(|i| site.priority_json(i)).collect();
    let url = format!("{}/rest/api/3/priority/search", site.base_url);
    Ok(Json(page.bean(&url, total, values)))
}

async fn project_search(State(s): St, Query(q): Q) -> ApiResult<Json<Value>> {
    let p = Params(q);
    let page = p.paging(50, 100)?;
    let expand = p.list("expand");
    let keys: Vec<String> = p.list("keys");
    let text = p.get("query").map(str::to_lowercase);
    let order = p.get("orderBy").unwrap_or("key").to_string();
    let site = s.site();
    let mut idx: Vec<usize> = (0..site.projects.len())
        .filter(|&i| {
            let pr = &site.projects[i];
            (keys.is_empty() || keys.iter().any(|k| k.eq_ignore_ascii_case(&pr.key)))
                && text.as_ref().is_none_or(|t| {
                    pr.key.to_lowercase().contains(t.as_str())
                        || pr.name.to_lowercase().contains(t.as_str())
                })
        })
        .collect();
    let (desc, field) = match order.strip_prefix('-') {
        Some(f) => (true, f),
        None => (false, order.strip_prefix('+').unwrap_or(&order)),
    };
    match field {
        "key" | "category" | "owner" | "archivedDate" | "deletedDate" => {
            idx.sort_by(|&a, &b| site.projects[a].key.cmp(&site.projects[b].key));
        }
        "name" => idx.sort_by(|&a, &b| site.projects[a].name.cmp(&site.projects[b].name)),
        "issueCount" => idx.sort_by_key(|&p| site.issues.iter().filter(|i| i.project == p).count()),
        "lastIssueUpdatedTime" => idx.sort_by_key(|&p| {
            site.issues
                .iter()
                .filter(|i| i.project == p)
                .map(|i| i.updated.ms)
                .max()
                .unwrap_or(0)
        }),
        other => {
            return Err(ApiError::bad_request(format!(
                "Invalid orderBy value '{other}'."
            )));
        }
    }
    if desc {
        idx.reverse();
    }
    let total = idx.len();
    let values = page
        .range(total)
        .map(|i| site.project_json(idx[i], &expand))
        .collect();
    let url = format!("{}/rest/api/3/project/search", site.base_url);
    Ok(Json(page.bean(&url, total, values)))
}

async fn search_get(State(s): St, Query(q): Q) -> ApiResult<Json<Value>> {
    let req = SearchRequest::from_params(&Params(q))?;
    let site = s.site();
    Ok(Json(search::run(&site, &req, now_ms())?))
}

async fn search_post(State(s): St, body: Bytes) -> ApiResult<Json<Value>> {
    let req = SearchRequest::from_body(&body)?;
    let site = s.site();
    Ok(Json(search::run(&site, &req, now_ms())?))
}

async fn issue(State(s): St, Path(key): Path<String>, Query(q): Q) -> ApiResult<Json<Value>> {
    let p = Params(q);
    let site = s.site();
    let idx = site.find_issue(&key).ok_or_else(ApiError::no_issue)?;
    let fields = p.list("fields");
    let sel = if fields.is_empty() {
        FieldSel::everything()
    } else {
        FieldSel::parse(&fields)
    };
    Ok(Json(search::render_issue(
        &site,
        idx,
        &sel,
        &p.list("expand"),
    )))
}

async fn comments(State(s): St, Path(key): Path<String>, Query(q): Q) -> ApiResult<Json<Value>> {
    let p = Params(q);
    let page = p.paging(100, 5000)?;
    let newest_first = match p.get("orderBy") {
        None | Some("created" | "+created") => false,
        Some("-created") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "Invalid orderBy value '{other}'. Valid values are 'created', '+created' and '-created'."
            )));
        }
    };
    let site = s.site();
    let issue = &site.issues[site.find_issue(&key).ok_or_else(ApiError::no_issue)?];
    let mut list: Vec<_> = issue.comments.iter().collect();
    if newest_first {
        list.reverse();
    }
    let values = page
        .range(list.len())
        .map(|i| site.comment_json(issue, list[i]))
        .collect();
    Ok(Json(page.legacy("comments", list.len(), values)))
}

async fn changelog(State(s): St, Path(key): Path<String>, Query(q): Q) -> ApiResult<Json<Value>> {
    let page = Params(q).paging(100, 100)?;
    let site = s.site();
    let issue = &site.issues[site.find_issue(&key).ok_or_else(ApiError::no_issue)?];
    let total = issue.histories.len();
    let values = page
        .range(total)
        .map(|i| site.history_json(&issue.histories[i]))
        .collect();
    let url = format!("{}/rest/api/3/issue/{key}/changelog", site.base_url);
    Ok(Json(page.bean(&url, total, values)))
}

async fn worklogs(State(s): St, Path(key): Path<String>, Query(q): Q) -> ApiResult<Json<Value>> {
    let p = Params(q);
    let page = p.paging(5000, 5000)?;
    let after = p.int("startedAfter")?;
    let before = p.int("startedBefore")?;
    let site = s.site();
    let issue = &site.issues[site.find_issue(&key).ok_or_else(ApiError::no_issue)?];
    let list: Vec<_> = issue
        .worklogs
        .iter()
        .filter(|w| {
            after.is_none_or(|a| w.started.ms >= a) && before.is_none_or(|b| w.started.ms <= b)
        })
        .collect();
    let values = page
        .range(list.len())
        .map(|i| site.worklog_json(issue, list[i]))
        .collect();
    Ok(Json(page.legacy("worklogs", list.len(), values)))
}

async fn boards(State(s): St, Query(q): Q) -> ApiResult<Json<Value>> {
    let p = Params(q);
    let page = p.paging(50, 50)?;
    let types = p.list("type");
    let project = p.get("projectKeyOrId").map(str::to_string);
    let name = p.get("name").map(str::to_lowercase);
    let site = s.site();
    let list: Vec<_> = site
        .boards
        .iter()
        .filter(|b| types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(b.kind)))
        .filter(|b| {
            project.as_ref().is_none_or(|k| {
                let pr = &site.projects[b.project];
                pr.key.eq_ignore_ascii_case(k) || &pr.id == k
            })
        })
        .filter(|b| {
            name.as_ref()
                .is_none_or(|n| b.name.to_lowercase().contains(n.as_str()))
        })
        .collect();
    let values = page
        .range(list.len())
        .map(|i| site.board_json(list[i]))
        .collect();
    Ok(Json(page.agile(list.len(), true, values)))
}

async fn sprints(State(s): St, Path(board): Path<String>, Query(q): Q) -> ApiResult<Json<Value>> {
    let p = Params(q);
    let page = p.paging(50, 50)?;
    let states = p.list("state");
    if let Some(bad) = states
        .iter()
        .find(|s| !["future", "active", "closed"].contains(&s.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "The sprint state '{bad}' is invalid. Valid states are: future, active, closed."
        )));
    }
    let id: i64 = board
        .parse()
        .map_err(|_| ApiError::bad_request(format!("The board id '{board}' is invalid.")))?;
    let site = s.site();
    let b = site.boards.iter().find(|b| b.id == id).ok_or_else(|| {
        ApiError::not_found("Board does not exist or you do not have permission to see it.")
    })?;
    if b.kind != "scrum" {
        return Err(ApiError::bad_request("The board does not support sprints"));
    }
    let list: Vec<_> = b
        .sprints
        .iter()
        .map(|&i| &site.sprints[i])
        .filter(|sp| states.is_empty() || states.iter().any(|s| s == sp.state))
        .collect();
    let values = page
        .range(list.len())
        .map(|i| site.sprint_json(list[i]))
        .collect();
    Ok(Json(page.agile(list.len(), false, values)))
}

// ---- admin -------------------------------------------------------------------

/// `POST /_mock/touch?count=N` or `?keys=A-1,B-2`: see [`crate::MockHandle::touch`].
async fn touch(State(s): St, Query(q): Q) -> ApiResult<Json<Value>> {
    let p = Params(q);
    let keys = p.list("keys");
    let mut site = s.site();
    let indexes: Vec<usize> = if keys.is_empty() {
        let n = p.int("count")?.unwrap_or(1).max(0) as usize;
        (0..n.min(site.issues.len())).collect()
    } else {
        let mut out = Vec::new();
        for k in &keys {
            out.push(
                site.find_issue(k)
                    .ok_or_else(|| ApiError::not_found(format!("Issue '{k}' does not exist.")))?,
            );
        }
        out
    };
    let (touched, at) = site.touch(&indexes, now_ms());
    Ok(Json(
        json!({"touched": touched, "updated": at.jira(), "updated_ms": at.ms}),
    ))
}

async fn stats(State(s): St) -> Json<Value> {
    let stats = s.stats().clone();
    let mut v = serde_json::to_value(&stats).unwrap_or_else(|_| json!({}));
    if let Some(m) = v.as_object_mut() {
        m.insert(
            "data_requests".into(),
            json!(s.data_requests.load(std::sync::atomic::Ordering::SeqCst)),
        );
    }
    Json(v)
}

async fn reset_stats(State(s): St) -> StatusCode {
    *s.stats() = Stats::default();
    StatusCode::NO_CONTENT
}

async fn site_totals(State(s): St) -> Json<Value> {
    let totals = s.site().totals();
    Json(serde_json::to_value(totals).unwrap_or_else(|_| json!({})))
}
