//! The local Jira Cloud mock, serving in the background for the life of a test.

pub use jira_mock::{MockConfig, MockHandle};

/// A Jira mock serving in the background for the life of the value.
pub struct Mock {
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// Control of the site: faults, data, request counts.
    pub handle: MockHandle,
    _server: jira_mock::MockServer,
    _runtime: tokio::runtime::Runtime,
}

impl Mock {
    /// Starts a mock site.
    pub fn start(config: MockConfig) -> Mock {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = runtime
            .block_on(jira_mock::start(config))
            .expect("mock starts");
        Mock {
            url: server.base_url().to_string(),
            handle: server.handle(),
            _server: server,
            _runtime: runtime,
        }
    }
}
