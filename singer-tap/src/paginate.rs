//! Paginators: where the next page starts, as a JSON value the runtime can checkpoint.
//!
//! | paginator | request | next position |
//! |---|---|---|
//! | [`PageNumberPaginator`] | `?page=N` | `N + 1` while pages are full |
//! | [`OffsetPaginator`] | `?startAt=N&maxResults=M` | `N + records`, until `isLast`, `total`, or a short page |
//! | [`TokenPaginator`] | `?nextPageToken=T` | the token in the body, until it is absent or `isLast` |
//! | [`LinkHeaderPaginator`] | the URL itself | the `rel="next"` URL of the `Link` header |

use serde_json::Value;

use crate::client::Response;

/// The query and URL of one page request.
#[derive(Debug, Clone, Default)]
pub struct RequestSpec {
    /// Query parameters.
    pub query: Vec<(String, String)>,
    /// A full URL that replaces the stream's path (Link-header paging).
    pub url: Option<String>,
}

/// Moves through the pages of an endpoint.
pub trait Paginator: Send + Sync {
    /// Adds the position (`None`: first page) to the request.
    fn apply(&self, position: Option<&Value>, request: &mut RequestSpec);
    /// The position of the page after this response, or `None` when it was the last.
    fn next(&self, position: Option<&Value>, response: &Response, records: usize) -> Option<Value>;
}

/// No paging: one request returns everything.
#[derive(Debug, Clone, Default)]
pub struct SinglePage;

impl Paginator for SinglePage {
    fn apply(&self, _: Option<&Value>, _: &mut RequestSpec) {}
    fn next(&self, _: Option<&Value>, _: &Response, _: usize) -> Option<Value> {
        None
    }
}

/// `?page=1`, `?page=2`, ... while pages come back full.
#[derive(Debug, Clone)]
pub struct PageNumberPaginator {
    /// The page parameter.
    pub param: String,
    /// The first page number.
    pub first: i64,
    /// The page size parameter and value, if the API takes one.
    pub page_size: Option<(String, usize)>,
}

impl PageNumberPaginator {
    /// `param` from `first`, with a page size.
    pub fn new(param: &str, first: i64, page_size: Option<(&str, usize)>) -> Self {
        PageNumberPaginator {
            param: param.into(),
            first,
            page_size: page_size.map(|(p, n)| (p.into(), n)),
        }
    }
}

impl Paginator for PageNumberPaginator {
    fn apply(&self, position: Option<&Value>, request: &mut RequestSpec) {
        let page = position.and_then(Value::as_i64).unwrap_or(self.first);
        request.query.push((self.param.clone(), page.to_string()));
        if let Some((p, n)) = &self.page_size {
            request.query.push((p.clone(), n.to_string()));
        }
    }

    fn next(&self, position: Option<&Value>, _: &Response, records: usize) -> Option<Value> {
        let page = position.and_then(Value::as_i64).unwrap_or(self.first);
        let full = self.page_size.as_ref().is_none_or(|(_, n)| records >= *n);
        (records > 0 && full).then(|| Value::from(page + 1))
    }
}

/// Offset and limit (`startAt`/`maxResults` in Jira), ending on `isLast`, `total` or a
/// short or empty page.
#[derive(Debug, Clone)]
pub struct OffsetPaginator {
    /// The offset parameter.
    pub offset_param: String,
    /// The limit parameter.
    pub limit_param: String,
    /// Records per page.
    pub limit: usize,
    /// JSON pointer to a boolean "last page" flag, if the API sends one.
    pub is_last_pointer: Option<String>,
    /// JSON pointer to the total count, if the API sends one.
    pub total_pointer: Option<String>,
    /// Whether a page shorter than `limit` means the end (false for APIs that cap pages
    /// below the requested limit).
    pub short_page_ends: bool,
}

impl OffsetPaginator {
    /// Jira's `startAt`/`maxResults`, with `isLast` and `total`.
    pub fn jira(limit: usize) -> Self {
        OffsetPaginator {
            offset_param: "startAt".into(),
            limit_param: "maxResults".into(),
            limit,
            is_last_pointer: Some("/isLast".into()),
            total_pointer: Some("/total".into()),
            short_page_ends: false,
        }
    }
}

impl Paginator for OffsetPaginator {
    fn apply(&self, position: Option<&Value>, request: &mut RequestSpec) {
        let offset = position.and_then(Value::as_u64).unwrap_or(0);
        request
            .query
            .push((self.offset_param.clone(), offset.to_string()));
        request
            .query
            .push((self.limit_param.clone(), self.limit.to_string()));
    }

    fn next(&self, position: Option<&Value>, response: &Response, records: usize) -> Option<Value> {
        if records == 0 {
            return None;
        }
        let next = position.and_then(Value::as_u64).unwrap_or(0) + records as u64;
        if let Some(p) = &self.is_last_pointer
            && let Some(last) = response.body.pointer(p).and_then(Value::as_bool)
        {
            return (!last).then(|| Value::from(next));
        }
        if let Some(p) = &self.total_pointer
            && let Some(total) = response.body.pointer(p).and_then(Value::as_u64)
        {
            return (next < total).then(|| Value::from(next));
        }
        if self.short_page_ends && records < self.limit {
            return None;
        }
        Some(Value::from(next))
    }
}

/// A continuation token from the body (`nextPageToken`), sent back as a parameter.
#[derive(Debug, Clone)]
pub struct TokenPaginator {
    /// The request parameter carrying the token.
    pub param: String,
    /// JSON pointer to the token in the response.
    pub token_pointer: String,
    /// JSON pointer to a boolean "last page" flag, if any.
    pub is_last_pointer: Option<String>,
}

impl TokenPaginator {
    /// `param` from the body at `token_pointer`.
    pub fn new(param: &str, token_pointer: &str, is_last_pointer: Option<&str>) -> Self {
        TokenPaginator {
            param: param.into(),
            token_pointer: token_pointer.into(),
            is_last_pointer: is_last_pointer.map(str::to_string),
        }
    }
}

impl Paginator for TokenPaginator {
    fn apply(&self, position: Option<&Value>, request: &mut RequestSpec) {
        if let Some(token) = position.and_then(Value::as_str) {
            request.query.push((self.param.clone(), token.to_string()));
        }
    }

    fn next(&self, _: Option<&Value>, response: &Response, _: usize) -> Option<Value> {
        if let Some(p) = &self.is_last_pointer
            && response.body.pointer(p).and_then(Value::as_bool) == Some(true)
        {
            return None;
        }
        response
            .body
            .pointer(&self.token_pointer)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .map(|t| Value::String(t.to_string()))
    }
}

/// RFC 8288 `Link: <url>; rel="next"` (GitHub style).
#[derive(Debug, Clone, Default)]
pub struct LinkHeaderPaginator;

impl Paginator for LinkHeaderPaginator {
    fn apply(&self, position: Option<&Value>, request: &mut RequestSpec) {
        if let Some(url) = position.and_then(Value::as_str) {
            request.url = Some(url.to_string());
            request.query.clear();
        }
    }

    fn next(&self, _: Option<&Value>, response: &Response, _: usize) -> Option<Value> {
        let link = response.headers.get(reqwest::header::LINK)?.to_str().ok()?;
        link.split(',').find_map(|part| {
            let mut pieces = part.split(';');
            let url = pieces.next()?.trim().strip_prefix('<')?.strip_suffix('>')?;
            pieces
                .any(|p| {
                    let p = p.trim().replace(' ', "");
                    p == "rel=\"next\"" || p == "rel=next"
                })
                .then(|| Value::String(url.to_string()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue, LINK};
    use serde_json::json;

    fn response(body: Value) -> Response {
        Response {
            status: 200,
            headers: HeaderMap::new(),
            body,
            url: String::new(),
        }
    }

    #[test]
    fn page_numbers() {
        let p = PageNumberPaginator::new("page", 1, Some(("per_page", 2)));
        let mut spec = RequestSpec::default();
        p.apply(None, &mut spec);
        assert_eq!(
            spec.query,
            [("page".into(), "1".into()), ("per_page".into(), "2".into())]
        );
        assert_eq!(p.next(None, &response(json!([])), 2), Some(json!(2)));
        assert_eq!(p.next(Some(&json!(2)), &response(json!([])), 1), None);
        assert_eq!(p.next(Some(&json!(2)), &response(json!([])), 0), None);
    }

    #[test]
    fn offsets_end_on_is_last_total_or_empty() {
        let p = OffsetPaginator::jira(50);
        assert_eq!(
            p.next(None, &response(json!({"isLast": false})), 50),
            Some(json!(50))
        );
        assert_eq!(
            p.next(Some(&json!(50)), &response(json!({"isLast": true})), 50),
            None
        );
        assert_eq!(
            p.next(Some(&json!(50)), &response(json!({"total": 120})), 50),
            Some(json!(100))
        );
        assert_eq!(
            p.next(Some(&json!(100)), &response(json!({"total": 120})), 20),
            None
        );
        assert_eq!(p.next(Some(&json!(100)), &response(json!({})), 0), None);
        assert_eq!(
            p.next(Some(&json!(100)), &response(json!({})), 7),
            Some(json!(107)),
            "capped pages go on"
        );
        let mut spec = RequestSpec::default();
        p.apply(Some(&json!(100)), &mut spec);
        assert_eq!(spec.query[0], ("startAt".into(), "100".into()));
    }

    #[test]
    fn tokens() {
        let p = TokenPaginator::new("nextPageToken", "/nextPageToken", Some("/isLast"));
        assert_eq!(
            p.next(None, &response(json!({"nextPageToken": "abc"})), 1),
            Some(json!("abc"))
        );
        assert_eq!(
            p.next(
                None,
                &response(json!({"nextPageToken": "abc", "isLast": true})),
                1
            ),
            None
        );
        assert_eq!(
            p.next(None, &response(json!({"nextPageToken": ""})), 1),
            None
        );
        assert_eq!(p.next(None, &response(json!({})), 1), None);
        let mut spec = RequestSpec::default();
        p.apply(Some(&json!("abc")), &mut spec);
        assert_eq!(spec.query, [("nextPageToken".into(), "abc".into())]);
    }

    #[test]
    fn link_headers() {
        let mut r = response(json!([]));
        r.headers.insert(
            LINK,
            HeaderValue::from_static(
                "<https://x/a?page=1>; rel=\"prev\", <https://x/a?page=3>; rel=\"next\"",
            ),
        );
        assert_eq!(
            LinkHeaderPaginator.next(None, &r, 1),
            Some(json!("https://x/a?page=3"))
        );
        assert_eq!(
            LinkHeaderPaginator.next(None, &response(json!([])), 1),
            None
        );
    }
}
