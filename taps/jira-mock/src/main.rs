//! `jira-mock`: run the Jira Cloud mock server until killed.
//!
//! Prints exactly one line to stdout once bound —
//! `jira-mock listening on http://127.0.0.1:PORT` — and logs to stderr
//! (`RUST_LOG` controls the level; default `info`).

use std::io::{IsTerminal, Write};

use clap::Parser;
use jira_mock::MockConfig;

/// A local Jira Cloud mock (REST v3 + Agile 1.0) with deterministic data and fault injection.
#[derive(Debug, Parser)]
#[command(name = "jira-mock", version)]
struct Cli {
    /// Port on 127.0.0.1 (0 = ephemeral).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Seed of the generated site.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of users.
    #[arg(long, default_value_t = 25)]
    users: usize,
    /// Number of projects.
    #[arg(long, default_value_t = 3)]
    projects: usize,
    /// Issues in each project.
    #[arg(long, default_value_t = 40)]
    issues_per_project: usize,
    /// Histories embedded per issue with expand=changelog.
    #[arg(long, default_value_t = 40)]
    changelog_cap: usize,
    /// E-mail for HTTP Basic auth (auth is enforced when e-mail and API token are set).
    #[arg(long)]
    email: Option<String>,
    /// API token for HTTP Basic auth.
    #[arg(long)]
    api_token: Option<String>,
    /// OAuth Bearer token.
    #[arg(long)]
    access_token: Option<String>,
    /// Path prefix answered with 403 (repeatable).
    #[arg(long = "forbidden-path")]
    forbidden_paths: Vec<String>,
    /// Every Nth data request gets a 429.
    #[arg(long)]
    rate_limit_every: Option<u32>,
    /// Retry-After seconds on 429/503.
    #[arg(long, default_value_t = 1)]
    retry_after: u64,
    /// Leave Retry-After out of 429/503 responses.
    #[arg(long)]
    omit_retry_after: bool,
    /// Start a burst of 5xx every Nth data request.
    #[arg(long)]
    error_burst_every: Option<u32>,
    /// Length of each 5xx burst.
    #[arg(long, default_value_t = 1)]
    error_burst_len: u32,
    /// Reset the connection (no response) on every Nth data request.
    #[arg(long)]
    reset_every: Option<u32>,
    /// Send a 200 with half of its JSON body on every Nth data request.
    #[arg(long)]
    truncate_every: Option<u32>,
    /// Close the connection half-way through the body on every Nth data request.
    #[arg(long)]
    cut_every: Option<u32>,
    /// Delay every Nth data request by --slow-ms.
    #[arg(long)]
    slow_every: Option<u32>,
    /// Delay of slow requests in milliseconds.
    #[arg(long, default_value_t = 1000)]
    slow_ms: u64,
    /// A site without Jira Software: the Agile API answers 404.
    #[arg(long)]
    no_jira_software: bool,
    /// Also serve the API under /ex/jira/CLOUD_ID, as api.atlassian.com does for OAuth apps.
    #[arg(long)]
    cloud_id: Option<String>,
}

impl Cli {
    fn config(self) -> MockConfig {
        MockConfig {
            port: self.port,
            seed: self.seed,
            users: self.users,
            projects: self.projects,
            issues_per_project: self.issues_per_project,
            embedded_changelog_cap: self.changelog_cap,
            email: self.email,
            api_token: self.api_token,
            access_token: self.access_token,
            forbidden_paths: self.forbidden_paths,
            rate_limit_every: self.rate_limit_every,
            retry_after_secs: self.retry_after,
            omit_retry_after: self.omit_retry_after,
            error_burst_every: self.error_burst_every,
            error_burst_len: self.error_burst_len,
            reset_every: self.reset_every,
            truncate_every: self.truncate_every,
            cut_every: self.cut_every,
            slow_every: self.slow_every,
            slow_ms: self.slow_ms,
            jira_software: !self.no_jira_software,
            cloud_id: self.cloud_id,
            ..MockConfig::default()
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = Cli::parse().config();
    let server = jira_mock::start(config).await?;
    let totals = server.totals();
    tracing::info!(
        issues = totals.issues,
        projects = totals.projects,
        comments = totals.comments,
        worklogs = totals.worklogs,
        changelogs = totals.changelogs,
        "site generated"
    );
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "jira-mock listening on {}", server.base_url())?;
        out.flush()?;
    }
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}
