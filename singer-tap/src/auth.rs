//! Authenticators: how requests prove who they are. Secrets never appear in `Debug`.

use std::fmt;

/// How a [`crate::RestClient`] authenticates.
#[derive(Clone, Default)]
pub enum Authenticator {
    /// No credentials.
    #[default]
    None,
    /// HTTP Basic (`Authorization: Basic base64(user:password)`).
    Basic {
        /// The user name.
        username: String,
        /// The password or API token.
        password: String,
    },
    /// `Authorization: Bearer <token>` (OAuth access tokens).
    Bearer {
        /// The token.
        token: String,
    },
    /// A key in a header of its own (`X-API-Key: <key>`).
    ApiKey {
        /// The header name.
        header: String,
        /// The key.
        value: String,
    },
}

impl Authenticator {
    pub(crate) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Authenticator::None => request,
            Authenticator::Basic { username, password } => {
                request.basic_auth(username, Some(password))
            }
            Authenticator::Bearer { token } => request.bearer_auth(token),
            Authenticator::ApiKey { header, value } => {
                request.header(header.as_str(), value.as_str())
            }
        }
    }

    /// Which credential this is, for error messages (never the secret itself).
    pub fn describe(&self) -> String {
        match self {
            Authenticator::None => "no credentials".into(),
            Authenticator::Basic { username, .. } => {
                format!("HTTP Basic credentials of '{username}'")
            }
            Authenticator::Bearer { .. } => "the bearer token".into(),
            Authenticator::ApiKey { header, .. } => format!("the API key in header '{header}'"),
        }
    }
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let a = Authenticator::Basic {
            username: "me@x.com".into(),
            password: "s3cret".into(),
        };
        let b = Authenticator::Bearer {
            token: "tok3n".into(),
        };
        let c = Authenticator::ApiKey {
            header: "X-Key".into(),
            value: "k3y".into(),
        };
        let text = format!("{a:?} {b:?} {c:?}");
        assert!(
            !text.contains("s3cret") && !text.contains("tok3n") && !text.contains("k3y"),
            "{text}"
        );
        assert!(text.contains("me@x.com"));
    }
}
