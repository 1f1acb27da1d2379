//! [`RestStream`]: a stream read from one REST endpoint, in a few lines.
//!
//! ```no_run
//! use singer_tap::{Authenticator, OffsetPaginator, RestClient, RestStream, StreamInfo};
//! use std::sync::Arc;
//!
//! let client = Arc::new(RestClient::new("https://acme.atlassian.net", Authenticator::None, Default::default())?);
//! let projects = RestStream::builder(
//!         StreamInfo::new("projects", serde_json::json!({"properties": {"id": {"type": "string"}}})).with_keys(&["id"]),
//!         client,
//!         "/rest/api/3/project/search",
//!     )
//!     .records_at("/values")
//!     .paginator(OffsetPaginator::jira(50))
//!     .build();
//! # Ok::<(), singer_tap::Error>(())
//! ```

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::client::RestClient;
use crate::error::{Error, Result};
use crate::paginate::{Paginator, RequestSpec, SinglePage};
use crate::stream::{Context, Page, PageRequest, Stream, StreamInfo};
use singer_core::message::Record;

type ParamsFn = dyn Fn(&PageRequest<'_>) -> Vec<(String, String)> + Send + Sync;
type RecordFn = dyn Fn(Record, Option<&Context>) -> Option<Record> + Send + Sync;
type ChildFn = dyn Fn(&Record, Option<&Context>) -> Option<Context> + Send + Sync;

/// A stream read from one REST endpoint.
pub struct RestStream {
    info: StreamInfo,
    client: Arc<RestClient>,
    path: String,
    params: Vec<(String, String)>,
    records_pointer: String,
    paginator: Box<dyn Paginator>,
    params_fn: Option<Box<ParamsFn>>,
    record_fn: Option<Box<RecordFn>>,
    child_fn: Option<Box<ChildFn>>,
}

/// Builds a [`RestStream`].
pub struct RestStreamBuilder(RestStream);

impl RestStream {
    /// A stream of `info` read from `path` (placeholders like `{issue_id}` are filled from
    /// the context).
    pub fn builder(info: StreamInfo, client: Arc<RestClient>, path: &str) -> RestStreamBuilder {
        RestStreamBuilder(RestStream {
            info,
            client,
            path: path.to_string(),
            params: Vec::new(),
            records_pointer: String::new(),
            paginator: Box::new(SinglePage),
            params_fn: None,
            record_fn: None,
            child_fn: None,
        })
    }

    fn path_for(&self, context: Option<&Context>) -> Result<String> {
        let mut path = self.path.clone();
        if let Some(ctx) = context {
            for (k, v) in ctx {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let encoded: String =
                    url::form_urlencoded::byte_serialize(text.as_bytes()).collect();
                path = path.replace(&format!("{{{k}}}"), &encoded);
            }
        }
        if path.contains('{') {
            return Err(Error::Sync(format!(
                "stream '{}': path '{path}' has placeholders the context does not fill",
                self.info.name
            )));
        }
        Ok(path)
    }
}

impl RestStreamBuilder {
    /// Where the records are in the response (a JSON pointer; default: the body itself).
    pub fn records_at(mut self, pointer: &str) -> Self {
        self.0.records_pointer = pointer.to_string();
        self
    }

    /// A fixed query parameter.
    pub fn param(mut self, key: &str, value: impl ToString) -> Self {
        self.0.params.push((key.to_string(), value.to_string()));
        self
    }

    /// How to page.
    pub fn paginator(mut self, paginator: impl Paginator + 'static) -> Self {
        self.0.paginator = Box::new(paginator);
        self
    }

    /// Parameters computed per request (incremental bounds from `since`, context values).
    pub fn params_fn(
        mut self,
        f: impl Fn(&PageRequest<'_>) -> Vec<(String, String)> + Send + Sync + 'static,
    ) -> Self {
        self.0.params_fn = Some(Box::new(f));
        self
    }

    /// The post-transform hook.
    pub fn map_record(
        mut self,
        f: impl Fn(Record, Option<&Context>) -> Option<Record> + Send + Sync + 'static,
    ) -> Self {
        self.0.record_fn = Some(Box::new(f));
        self
    }

    /// The context for child streams of each record.
    pub fn child_context(
        mut self,
        f: impl Fn(&Record, Option<&Context>) -> Option<Context> + Send + Sync + 'static,
    ) -> Self {
        self.0.child_fn = Some(Box::new(f));
        self
    }

    /// The stream.
    pub fn build(self) -> RestStream {
        self.0
    }
}

/// The records at `pointer` in a body: an array of objects (non-objects are skipped with a
/// warning).
pub fn extract_records(body: &mut Value, pointer: &str, stream: &str) -> Vec<Record> {
    let target = if pointer.is_empty() {
        Some(body)
    } else {
        body.pointer_mut(pointer)
    };
    match target.map(Value::take) {
        Some(Value::Array(items)) => items
            .into_iter()
            .filter_map(|item| match item {
                Value::Object(m) => Some(m),
                other => {
                    tracing::warn!(
                        stream,
                        "skipping a non-object record: {}",
                        singer_core::message::json_kind(&other)
                    );
                    None
                }
            })
            .collect(),
        Some(Value::Null) | None => Vec::new(),
        Some(Value::Object(m)) => vec![m],
        Some(other) => {
            tracing::warn!(
                stream,
                "records pointer '{pointer}' holds {}",
                singer_core::message::json_kind(&other)
            );
            Vec::new()
        }
    }
}

#[async_trait]
impl Stream for RestStream {
    fn info(&self) -> &StreamInfo {
        &self.info
    }

    async fn fetch_page(&self, request: PageRequest<'_>) -> Result<Page> {
        let mut spec = RequestSpec {
            query: self.params.clone(),
            url: None,
        };
        if let Some(f) = &self.params_fn {
            spec.query.extend(f(&request));
        }
        self.paginator.apply(request.position, &mut spec);
        let path = match &spec.url {
            Some(url) => url.clone(),
            None => self.path_for(request.context)?,
        };
        let mut response = self.client.get(&path, &spec.query, &self.path).await?;
        let records = extract_records(&mut response.body, &self.records_pointer, &self.info.name);
        let next = self
            .paginator
            .next(request.position, &response, records.len());
        Ok(Page { records, next })
    }

    fn child_context(&self, record: &Record, context: Option<&Context>) -> Option<Context> {
        self.child_fn.as_ref().and_then(|f| f(record, context))
    }

    fn post_process(&self, record: Record, context: Option<&Context>) -> Option<Record> {
        match &self.record_fn {
            Some(f) => f(record, context),
            None => Some(record),
        }
    }
}
