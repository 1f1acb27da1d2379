//! `tap-rest-example`: a whole Singer tap on the singer-rs SDK, for a small ticketing API.
//!
//! `tickets` is incremental on `updated_at` and paged by page number; `ticket_comments` is
//! its child, synced once per ticket with a bookmark of its own per ticket. The README
//! beside this file walks through it line by line.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};
use singer_core::cli::About;
use singer_core::settings::settings_schema;
use singer_tap::{
    Authenticator, Context, PageNumberPaginator, PageRequest, RestClient, RestStream, Result,
    StreamInfo, Tap, TapSettings,
};

/// The tap's settings: its own, and the ones every tap shares.
#[derive(Deserialize, JsonSchema)]
struct Config {
    /// The API's base URL, e.g. https://tickets.example.com.
    api_url: String,
    /// The API token, sent as a bearer token.
    #[schemars(extend("secret" = true, "writeOnly" = true))]
    api_token: String,
    /// start_date, end_date, page_size, request_timeout_seconds, max_tries, user_agent,
    /// lookback_minutes.
    #[serde(flatten)]
    tap: TapSettings,
}

fn about() -> About {
    About {
        name: "tap-rest-example",
        description: "Extracts tickets and their comments from the example ticketing API.",
        version: env!("CARGO_PKG_VERSION"),
        capabilities: vec![
            "catalog",
            "discover",
            "state",
            "about",
            "test",
            "stream-maps",
            "batch",
        ],
        settings: settings_schema::<Config>(),
    }
}

/// `?updated_since=` for an incremental stream's window (the bookmark, or start_date).
fn since(param: &'static str) -> impl Fn(&PageRequest<'_>) -> Vec<(String, String)> {
    move |request| match request.since.and_then(Value::as_str) {
        Some(since) => vec![(param.to_string(), since.to_string())],
        None => vec![],
    }
}

fn build(config: Config) -> Result<Tap> {
    config.tap.check()?;
    let auth = Authenticator::Bearer {
        token: config.api_token.clone(),
    };
    let http = config
        .tap
        .http("tap-rest-example", env!("CARGO_PKG_VERSION"));
    let client = Arc::new(RestClient::new(&config.api_url, auth, http)?);
    let pages = || PageNumberPaginator::new("page", 1, Some(("per_page", config.tap.page_size)));

    let tickets = RestStream::builder(
        StreamInfo::new(
            "tickets",
            json!({"type": "object", "properties": {
                "id": {"type": "integer"},
                "title": {"type": ["string", "null"]},
                "status": {"type": ["string", "null"], "enum": ["open", "pending", "closed", null]},
                "updated_at": {"type": "string", "format": "date-time"}}}),
        )
        .with_keys(&["id"])
        .with_replication_key("updated_at", true),
        client.clone(),
        "/api/tickets",
    )
    .records_at("/tickets")
    .params_fn(since("updated_since"))
    .paginator(pages())
    // Each ticket's comments are a partition of the child stream, keyed by ticket_id.
    .child_context(|ticket, _| {
        let id = ticket.get("id")?.clone();
        Some(Context::from_iter([("ticket_id".to_string(), id)]))
    })
    .build();

    let comments = RestStream::builder(
        StreamInfo::new(
            "ticket_comments",
            json!({"type": "object", "properties": {
                "id": {"type": "integer"},
                "ticket_id": {"type": "integer"},
                "body": {"type": ["string", "null"]},
                "created_at": {"type": "string", "format": "date-time"}}}),
        )
        .with_keys(&["id"])
        .with_replication_key("created_at", true)
        .with_parent("tickets"),
        client,
        "/api/tickets/{ticket_id}/comments",
    )
    .records_at("/comments")
    .params_fn(since("since"))
    .paginator(pages())
    // The API leaves the parent out of each comment: add it from the context.
    .map_record(|mut comment, context| {
        let ticket = context.and_then(|c| c.get("ticket_id")).cloned();
        comment.insert("ticket_id".into(), ticket.unwrap_or(Value::Null));
        Some(comment)
    })
    .build();

    Ok(Tap {
        streams: vec![Arc::new(tickets), Arc::new(comments)],
        settings: config.tap.sync(),
        parquet_batches: None,
    })
}

fn main() -> std::process::ExitCode {
    singer_tap::main(about(), build)
}
