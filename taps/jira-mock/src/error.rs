//! Jira's `ErrorCollection` error body and the helpers that build it.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answered as `{"errorMessages":[…],"errors":{}}` with a status code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub messages: Vec<String>,
}

impl ApiError {
    /// An error with one message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            messages: vec![message.into()],
        }
    }

    /// `400 Bad Request`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// `404 Not Found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// The 404 for an unknown or invisible issue.
    pub fn no_issue() -> Self {
        Self::not_found("Issue does not exist or you do not have permission to see it.")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"errorMessages": self.messages, "errors": {}})),
        )
            .into_response()
    }
}

/// Result type of the handlers.
pub type ApiResult<T> = Result<T, ApiError>;
