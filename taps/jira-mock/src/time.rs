//! Instants with a display offset, formatted the way Jira formats them.
//!
//! Platform endpoints use `2024-01-15T10:23:45.123+0000` (offset without a colon);
//! Agile endpoints use `2024-01-08T09:00:00.000Z` or `...+10:00`.

use chrono::{DateTime, FixedOffset, NaiveDate, Offset, Utc};

/// Milliseconds in one minute / hour / day.
pub(crate) const MINUTE_MS: i64 = 60_000;
pub(crate) const HOUR_MS: i64 = 60 * MINUTE_MS;
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;

/// An instant (epoch milliseconds) plus the UTC offset (minutes) it is rendered in.
///
/// Equality and ordering of *instants* must use [`Stamp::ms`]; two stamps with the
/// same `ms` but different offsets denote the same instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    /// Milliseconds since the Unix epoch.
    pub ms: i64,
    /// Display offset east of UTC, in minutes.
    pub offset_min: i32,
}

impl Stamp {
    /// A stamp rendered in UTC.
    pub fn utc(ms: i64) -> Self {
        Self { ms, offset_min: 0 }
    }

    /// The same instant rendered with another offset.
    pub fn with_offset(self, offset_min: i32) -> Self {
        Self {
            ms: self.ms,
            offset_min,
        }
    }

    fn local(self) -> DateTime<FixedOffset> {
        let offset = FixedOffset::east_opt(self.offset_min * 60).unwrap_or_else(|| Utc.fix());
        DateTime::<Utc>::from_timestamp_millis(self.ms)
            .unwrap_or_default()
            .with_timezone(&offset)
    }

    /// Jira platform format: `2024-01-15T10:23:45.123+0000`.
    pub fn jira(self) -> String {
        self.local().format("%Y-%m-%dT%H:%M:%S%.3f%z").to_string()
    }

    /// Agile format: `2024-01-08T09:00:00.000Z`, or `...+10:00` for non-UTC offsets.
    pub fn agile(self) -> String {
        if self.offset_min == 0 {
            self.local().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
        } else {
            self.local().format("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
        }
    }

    /// The local calendar date, `yyyy-MM-dd`.
    pub fn date(self) -> String {
        self.local().format("%Y-%m-%d").to_string()
    }
}

/// Epoch ms of a UTC calendar date at midnight (0 if the date is invalid).
pub(crate) fn date_ms(year: i32, month: u32, day: u32) -> i64 {
    NaiveDate::from_ymd_opt(year, month, day)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|dt| dt.and_utc().timestamp_millis())
        .unwrap_or(0)
}

/// Current wall-clock time in epoch ms.
pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Jira's duration text with 8-hour days and 5-day weeks: `1w 2d 3h 30m`.
pub(crate) fn jira_duration(seconds: i64) -> String {
    let mut minutes = seconds.max(0) / 60;
    let mut parts = Vec::new();
    for (unit, size) in [("w", 5 * 8 * 60), ("d", 8 * 60), ("h", 60), ("m", 1)] {
        if minutes >= size {
            parts.push(format!("{}{unit}", minutes / size));
            minutes %= size;
        }
    }
    if parts.is_empty() {
        "0m".to_string()
    } else {
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let s = Stamp::utc(1_705_314_225_123);
        assert_eq!(s.jira(), "2024-01-15T10:23:45.123+0000");
        assert_eq!(s.with_offset(120).jira(), "2024-01-15T12:23:45.123+0200");
        assert_eq!(s.with_offset(-300).jira(), "2024-01-15T05:23:45.123-0500");
        assert_eq!(s.agile(), "2024-01-15T10:23:45.123Z");
        assert_eq!(s.with_offset(600).agile(), "2024-01-15T20:23:45.123+10:00");
        assert_eq!(date_ms(2024, 1, 15), 1_705_276_800_000);
        assert_eq!(jira_duration(5400), "1h 30m");
        assert_eq!(jira_duration(9 * 3600), "1d 1h");
        assert_eq!(jira_duration(0), "0m");
    }
}
