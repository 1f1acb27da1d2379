//! Shared server state: the configuration, the site, and request/fault counters.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::MockConfig;
use crate::site::Site;

/// How many faults of each kind were injected.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounts {
    /// `429` responses.
    pub rate_limited: u64,
    /// `500`/`502`/`503`/`504` responses from error bursts.
    pub server_errors: u64,
    /// Connections reset without a response.
    pub resets: u64,
    /// `200` responses whose JSON body was cut in half (well-formed HTTP).
    pub truncated: u64,
    /// Responses whose connection was closed in the middle of the body.
    pub cut: u64,
    /// Delayed responses.
    pub slowed: u64,
}

/// Request counters (data endpoints only; `/_mock/*` is not counted).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Stats {
    pub total_requests: u64,
    /// By request path, e.g. `/rest/api/3/issue/ALPHA-1/comment`.
    pub requests_by_path: BTreeMap<String, u64>,
    /// By route template, e.g. `/rest/api/3/issue/{issueIdOrKey}/comment`.
    pub requests_by_route: BTreeMap<String, u64>,
    /// By response status code (as a string key).
    pub responses_by_status: BTreeMap<String, u64>,
    pub faults: FaultCounts,
}

/// Everything the handlers share.
#[derive(Debug)]
pub struct AppState {
    pub config: MockConfig,
    pub site: Mutex<Site>,
    pub stats: Mutex<Stats>,
    /// Data requests seen so far; drives the every-Nth fault schedules.
    pub data_requests: AtomicU64,
    /// Server errors injected so far; drives the 500/502/503/504 cycle.
    pub burst_errors: AtomicU64,
}

/// Lock a mutex, ignoring poisoning (a panicking handler must not wedge the mock).
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AppState {
    pub fn site(&self) -> MutexGuard<'_, Site> {
        lock(&self.site)
    }

    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        lock(&self.stats)
    }
}
