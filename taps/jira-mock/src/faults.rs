//! Fault injection.
//!
//! Every request to a data endpoint (anything outside `/_mock/`) gets a sequence
//! number `n` (1, 2, 3, …) from one shared counter. Each fault has an every-Nth
//! schedule; when several hit the same `n`, the first of this list wins:
//!
//! 1. **reset** (`reset_every`): the connection is closed without any response
//!    bytes. The handler marks the connection (see [`FaultListener`]); the socket
//!    wrapper then fails every write and sets `SO_LINGER 0`, so the kernel sends a
//!    TCP RST. A client sees "connection reset" / "connection closed before message
//!    completed".
//! 2. **rate limit** (`rate_limit_every`): `429` with `Retry-After` (unless
//!    omitted), `X-RateLimit-Limit: 100`, `X-RateLimit-Remaining: 0`,
//!    `X-RateLimit-Reset` (`yyyy-MM-ddTHH:mmZ`, now + Retry-After rounded down to the
//!    minute) and `RateLimit-Reason: jira-burst-based`.
//! 3. **error burst** (`error_burst_every` = E, `error_burst_len` = L): requests
//!    `n` with `n >= E` and `n % E < L` fail, cycling through `500` (JSON
//!    ErrorCollection), `502`, `503` (with `Retry-After`) and `504` (HTML bodies, as
//!    an edge proxy sends).
//! 4. **cut** (`cut_every`): a `200` whose headers announce the full
//!    `Content-Length` but whose connection is closed after half of the body.
//! 5. **truncate** (`truncate_every`): a well-formed `200` whose body is the first
//!    half of the JSON (with a matching `Content-Length`), i.e. invalid JSON.
//!
//! **slow** (`slow_every`, `slow_ms`) is independent: the request is delayed
//! before it is handled, and may also get one of the faults above.
//!
//! Cut and truncate apply only when the real handler answered `200`. Because the
//! counter advances on every request, a retry after a fault gets the next `n` and
//! (unless schedules overlap, or E/L make a long burst) succeeds. Schedules do not
//! depend on the seed: they are fixed by the counter alone.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

use crate::error::ApiError;
use crate::state::AppState;

/// Per-connection control shared by the socket wrapper and the handlers.
#[derive(Debug, Default)]
pub struct ConnCtl {
    killed: AtomicBool,
}

impl ConnCtl {
    /// Make the connection fail: no further bytes are written, then RST.
    pub fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
    }

    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::SeqCst)
    }
}

/// Connection info handed to handlers through `ConnectInfo`.
#[derive(Clone, Debug)]
pub struct ConnInfo {
    pub remote: SocketAddr,
    pub ctl: Arc<ConnCtl>,
}

impl Connected<IncomingStream<'_, FaultListener>> for ConnInfo {
    fn connect_info(stream: IncomingStream<'_, FaultListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A TCP listener whose connections can be killed from a handler.
#[derive(Debug)]
pub struct FaultListener {
    inner: TcpListener,
}

impl FaultListener {
    pub fn new(inner: TcpListener) -> Self {
        Self { inner }
    }
}

impl Listener for FaultListener {
    type Io = FaultIo;
    type Addr = ConnInfo;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, remote)) => {
                    let _ = stream.set_nodelay(true);
                    let ctl = Arc::new(ConnCtl::default());
                    return (
                        FaultIo {
                            inner: stream,
                            ctl: ctl.clone(),
                        },
                        ConnInfo { remote, ctl },
                    );
                }
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(ConnInfo {
            remote: self.inner.local_addr()?,
            ctl: Arc::new(ConnCtl::default()),
        })
    }
}

/// A TCP stream that fails all I/O once its [`ConnCtl`] is killed.
#[derive(Debug)]
pub struct FaultIo {
    inner: TcpStream,
    ctl: Arc<ConnCtl>,
}

impl FaultIo {
    fn reset_error(&self) -> io::Error {
        // Linger 0: closing the socket sends RST instead of FIN.
        let _ = self.inner.set_zero_linger();
        io::Error::new(
            io::ErrorKind::ConnectionReset,
            "jira-mock: injected connection reset",
        )
    }
}

impl AsyncRead for FaultIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ctl.is_killed() {
            return Poll::Ready(Err(this.reset_error()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.ctl.is_killed() {
            return Poll::Ready(Err(this.reset_error()));
        }
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.ctl.is_killed() {
            return Poll::Ready(Err(this.reset_error()));
        }
        Pin::new(&mut this.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ctl.is_killed() {
            return Poll::Ready(Err(this.reset_error()));
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.ctl.is_killed() {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// What the schedule says for request number `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Reset,
    RateLimit,
    ServerError,
    Cut,
    Truncate,
}

fn every(n: u64, schedule: Option<u32>) -> bool {
    schedule.is_some_and(|e| e > 0 && n.is_multiple_of(u64::from(e)))
}

/// The fault (if any) for data request number `n` (1-based).
pub fn fault_for(config: &crate::MockConfig, n: u64) -> Option<Fault> {
    if every(n, config.reset_every) {
        return Some(Fault::Reset);
    }
    if every(n, config.rate_limit_every) {
        return Some(Fault::RateLimit);
    }
    if let Some(e) = config.error_burst_every.filter(|&e| e > 0) {
        let e = u64::from(e);
        if n >= e && n % e < u64::from(config.error_burst_len.max(1)) {
            return Some(Fault::ServerError);
        }
    }
    if every(n, config.cut_every) {
        return Some(Fault::Cut);
    }
    if every(n, config.truncate_every) {
        return Some(Fault::Truncate);
    }
    None
}

fn rate_limited(config: &crate::MockConfig) -> Response {
    let mut resp =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Rate limit exceeded.").into_response();
    let reset = chrono::Utc::now() + chrono::Duration::seconds(config.retry_after_secs as i64);
    let h = resp.headers_mut();
    if !config.omit_retry_after {
        h.insert(
            header::RETRY_AFTER,
            HeaderValue::from(config.retry_after_secs),
        );
    }
    h.insert("x-ratelimit-limit", HeaderValue::from_static("100"));
    h.insert("x-ratelimit-remaining", HeaderValue::from_static("0"));
    if let Ok(v) = HeaderValue::from_str(&reset.format("%Y-%m-%dT%H:%MZ").to_string()) {
        h.insert("x-ratelimit-reset", v);
    }
    h.insert(
        "ratelimit-reason",
        HeaderValue::from_static("jira-burst-based"),
    );
    resp
}

fn server_error(config: &crate::MockConfig, k: u64) -> Response {
    let status = [
        StatusCode::INTERNAL_SERVER_ERROR,
        StatusCode::BAD_GATEWAY,
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::GATEWAY_TIMEOUT,
    ][(k % 4) as usize];
    if status == StatusCode::INTERNAL_SERVER_ERROR {
        return ApiError::new(status, "Internal server error (injected by jira-mock).")
            .into_response();
    }
    let html = format!(
        "<html><head><title>{status}</title></head><body><h1>{status}</h1><p>Injected by jira-mock.</p></body></html>"
    );
    let mut resp = (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE && !config.omit_retry_after {
        resp.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(config.retry_after_secs),
        );
    }
    resp
}

/// Middleware for data routes: applies the fault schedule.
pub async fn inject(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let n = state.data_requests.fetch_add(1, Ordering::SeqCst) + 1;
    let config = &state.config;
    if every(n, config.slow_every) {
        state.stats().faults.slowed += 1;
        tokio::time::sleep(Duration::from_millis(config.slow_ms)).await;
    }
    let fault = fault_for(config, n);
    match fault {
        Some(Fault::Reset) => {
            if let Some(ConnectInfo(conn)) = req.extensions().get::<ConnectInfo<ConnInfo>>() {
                conn.ctl.kill();
                state.stats().faults.resets += 1;
                tracing::info!(n, path = %req.uri().path(), "fault: connection reset");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        }
        Some(Fault::RateLimit) => {
            state.stats().faults.rate_limited += 1;
            tracing::info!(n, path = %req.uri().path(), "fault: 429");
            return rate_limited(config);
        }
        Some(Fault::ServerError) => {
            let k = state.burst_errors.fetch_add(1, Ordering::SeqCst);
            state.stats().faults.server_errors += 1;
            tracing::info!(n, path = %req.uri().path(), "fault: server error");
            return server_error(config, k);
        }
        _ => {}
    }
    let resp = next.run(req).await;
    if !matches!(fault, Some(Fault::Cut | Fault::Truncate)) || resp.status() != StatusCode::OK {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let half = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(header::CONTENT_LENGTH);
    if fault == Some(Fault::Truncate) {
        state.stats().faults.truncated += 1;
        tracing::info!(n, "fault: truncated body");
        return Response::from_parts(parts, Body::from(half));
    }
    state.stats().faults.cut += 1;
    tracing::info!(n, "fault: connection cut mid-body");
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
    let stream = futures::stream::unfold(0u8, move |step| {
        let half = half.clone();
        async move {
            match step {
                0 => Some((Ok::<Bytes, io::Error>(half), 1)),
                1 => {
                    // Let the first half reach the client before failing the body.
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    Some((
                        Err(io::Error::new(
                            io::ErrorKind::ConnectionAborted,
                            "jira-mock: injected mid-body cut",
                        )),
                        2,
                    ))
                }
                _ => None,
            }
        }
    });
    Response::from_parts(parts, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MockConfig;

    #[test]
    fn schedule() {
        let c = MockConfig {
            reset_every: Some(10),
            rate_limit_every: Some(5),
            error_burst_every: Some(7),
            error_burst_len: 2,
            truncate_every: Some(3),
            ..MockConfig::default()
        };
        let got: Vec<Option<Fault>> = (1..=10).map(|n| fault_for(&c, n)).collect();
        assert_eq!(
            got,
            vec![
                None,
                None,
                Some(Fault::Truncate),
                None,
                Some(Fault::RateLimit),
                Some(Fault::Truncate),
                Some(Fault::ServerError),
                Some(Fault::ServerError),
                Some(Fault::Truncate),
                Some(Fault::Reset),
            ]
        );
        assert_eq!(fault_for(&MockConfig::default(), 1), None);
    }
}
