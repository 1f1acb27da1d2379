//! Authentication (HTTP Basic with e-mail + API token, or an OAuth Bearer token),
//! forbidden path prefixes, and request counting for data routes.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

use crate::MockConfig;
use crate::error::ApiError;
use crate::state::AppState;

/// Whether the `Authorization` header carries configured credentials. With no
/// credentials configured at all, every request is accepted.
pub fn authorized(config: &MockConfig, authorization: Option<&str>) -> bool {
    let basic = match (&config.email, &config.api_token) {
        (Some(e), Some(t)) => Some((e.as_str(), t.as_str())),
        _ => None,
    };
    if basic.is_none() && config.access_token.is_none() {
        return true;
    }
    let Some(value) = authorization.map(str::trim) else {
        return false;
    };
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("basic")
        && let Some((email, token)) = basic
    {
        let Ok(decoded) = STANDARD.decode(rest) else {
            return false;
        };
        let expected = format!("{email}:{token}");
        return decoded == expected.as_bytes();
    }
    if scheme.eq_ignore_ascii_case("bearer")
        && let Some(token) = &config.access_token
    {
        return rest == token;
    }
    false
}

/// The 401 answer. It never echoes the request's credentials.
pub fn unauthorized() -> Response {
    let mut resp = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"errorMessages": ["Client must be authenticated to access this resource."], "errors": {}})),
    )
        .into_response();
    let h = resp.headers_mut();
    h.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"protected-area\""),
    );
    h.insert(
        "x-seraph-loginreason",
        HeaderValue::from_static("AUTHENTICATED_FAILED"),
    );
    resp
}

/// Middleware: credentials, then forbidden prefixes; adds `X-AAccountId`.
pub async fn check(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if !authorized(&state.config, auth) {
        return unauthorized();
    }
    let path = req.uri().path();
    if state
        .config
        .forbidden_paths
        .iter()
        .any(|p| !p.is_empty() && path.starts_with(p.as_str()))
    {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "You currently don't have access to perform this operation.",
        )
        .into_response();
    }
    let account = state.site().users.first().map(|u| u.account_id.clone());
    let mut resp = next.run(req).await;
    if let Some(v) = account.and_then(|a| HeaderValue::from_str(&a).ok()) {
        resp.headers_mut().insert("x-aaccountid", v);
    }
    resp
}

/// The route template of a data path: the issue key/id and board id segments
/// become `{issueIdOrKey}` and `{boardId}`.
pub fn route_of(path: &str) -> String {
    let mut segs: Vec<&str> = path.split('/').collect();
    // ["", "rest", "api", "3", "issue", KEY, ...] / ["", "rest", "agile", "1.0", "board", ID, ...]
    if segs.len() >= 6 && segs[1] == "rest" {
        match segs[4] {
            "issue" => segs[5] = "{issueIdOrKey}",
            "board" => segs[5] = "{boardId}",
            _ => {}
        }
    }
    segs.join("/")
}

/// Middleware (outermost on data routes): counts requests and response codes.
pub async fn count(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    let route = route_of(&path);
    {
        let mut stats = state.stats();
        stats.total_requests += 1;
        *stats.requests_by_path.entry(path).or_default() += 1;
        *stats.requests_by_route.entry(route).or_default() += 1;
    }
    let resp = next.run(req).await;
    *state
        .stats()
        .responses_by_status
        .entry(resp.status().as_u16().to_string())
        .or_default() += 1;
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            route_of("/rest/api/3/issue/ALPHA-1/comment"),
            "/rest/api/3/issue/{issueIdOrKey}/comment"
        );
        assert_eq!(
            route_of("/rest/api/3/issue/10001"),
            "/rest/api/3/issue/{issueIdOrKey}"
        );
        assert_eq!(
            route_of("/rest/agile/1.0/board/3/sprint"),
            "/rest/agile/1.0/board/{boardId}/sprint"
        );
        assert_eq!(route_of("/rest/agile/1.0/board"), "/rest/agile/1.0/board");
        assert_eq!(route_of("/rest/api/3/search/jql"), "/rest/api/3/search/jql");
    }

    #[test]
    fn credentials() {
        let open = MockConfig::default();
        assert!(authorized(&open, None));
        let c = MockConfig {
            email: Some("me@example.com".into()),
            api_token: Some("tok".into()),
            access_token: Some("oauth".into()),
            ..MockConfig::default()
        };
        let basic = format!("Basic {}", STANDARD.encode("me@example.com:tok"));
        assert!(authorized(&c, Some(&basic)));
        assert!(authorized(&c, Some("Bearer oauth")));
        assert!(!authorized(&c, None));
        assert!(!authorized(&c, Some("Bearer nope")));
        let wrong = format!("Basic {}", STANDARD.encode("me@example.com:bad"));
        assert!(!authorized(&c, Some(&wrong)));
        assert!(!authorized(&c, Some("Basic !!!")));
    }
}
