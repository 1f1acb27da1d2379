//! Date-times as real APIs send them, normalised to UTC.
//!
//! JSON Schema's `date-time` means RFC 3339, but sources send many near-misses: Jira's
//! `2024-01-15T10:23:45.123+0000` (no colon in the offset), a space instead of `T`,
//! PostgreSQL's hour-only `+00`, no offset at all. Every form below is accepted and becomes a
//! UTC instant; a value without an offset is taken as UTC.
//!
//! ```
//! use singer_core::time::{format_datetime, parse_datetime};
//!
//! let t = parse_datetime("2024-01-15T12:23:45.123+0200").unwrap();
//! assert_eq!(format_datetime(&t), "2024-01-15T10:23:45.123Z");
//! ```

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};

/// Parses a date-time in any of the accepted forms into UTC.
///
/// Accepted: RFC 3339 (`Z` or `±hh:mm`, any fraction), offsets as `±hhmm` or `±hh`, a space
/// or `T` between date and time, no offset (UTC), and a bare date (midnight UTC).
pub fn parse_datetime(s: &str) -> Result<DateTime<Utc>, String> {
    let s = s.trim();
    if let Some(t) = parse_common(s.as_bytes()) {
        return Ok(t);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    parse_lenient(s).ok_or_else(|| format!("'{}' is not a date-time", truncate(s)))
}

/// The forms nearly every API sends (`2024-01-15T10:23:45.123+0000`, `...Z`, `...+02:00`),
/// read digit by digit: date-times are on the hot path of every target, and chrono's
/// format-string parsing is several times slower. `None` sends the value to the general
/// parsers, which accept more and word the errors.
fn parse_common(b: &[u8]) -> Option<DateTime<Utc>> {
    fn num(b: &[u8]) -> Option<u32> {
        b.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    }
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(num(&b[..4])?).ok()?,
        num(&b[5..7])?,
        num(&b[8..10])?,
    )?;
    let (hour, minute, second) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if let Some((b'.', frac)) = rest.split_first() {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        nanos = num(&frac[..digits])? * 10u32.pow(9 - digits as u32);
        rest = &frac[digits..];
    }
    let offset = match rest {
        [] | [b'Z' | b'z'] => 0,
        _ => offset_seconds(rest)?,
    };
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    let utc = NaiveDateTime::new(date, time) - chrono::Duration::seconds(i64::from(offset));
    Some(utc.and_utc())
}

fn parse_lenient(s: &str) -> Option<DateTime<Utc>> {
    if s.len() < 10 || !s.is_char_boundary(10) {
        return None;
    }
    let date = NaiveDate::parse_from_str(&s[..10], "%Y-%m-%d").ok()?;
    let rest = &s[10..];
    if rest.is_empty() {
        return Some(date.and_time(NaiveTime::MIN).and_utc());
    }
    let sep = rest.as_bytes()[0];
    if !matches!(sep, b'T' | b't' | b' ') {
        return None;
    }
    let rest = &rest[1..];
    let (time_part, offset) = split_offset(rest)?;
    let time = NaiveTime::parse_from_str(time_part, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(time_part, "%H:%M"))
        .ok()?;
    let naive = NaiveDateTime::new(date, time);
    let t = match offset {
        None => naive.and_utc(),
        Some(offset) => naive
            .and_local_timezone(offset)
            .single()?
            .with_timezone(&Utc),
    };
    Some(t)
}

/// Splits `10:23:45.123+0000` into the time and its offset (`None`: no offset given).
fn split_offset(s: &str) -> Option<(&str, Option<FixedOffset>)> {
    if let Some(t) = s.strip_suffix(['Z', 'z']) {
        return Some((t, FixedOffset::east_opt(0)));
    }
    // The offset sign is the last '+' or '-' after the first ':' of the time.
    let after_hours = s.find(':').map_or(0, |i| i + 1);
    let Some(pos) = s[after_hours..].rfind(['+', '-']).map(|p| p + after_hours) else {
        return Some((s.trim_end_matches(" UTC"), None));
    };
    let (time, off) = s.split_at(pos);
    Some((
        time.trim_end(),
        FixedOffset::east_opt(offset_seconds(off.as_bytes())?),
    ))
}

/// An offset, `+05:30`, `+0530` or `+05` (colons anywhere are ignored), as seconds east
/// of UTC.
fn offset_seconds(off: &[u8]) -> Option<i32> {
    let (sign, rest) = match off.split_first()? {
        (b'+', rest) => (1, rest),
        (b'-', rest) => (-1, rest),
        _ => return None,
    };
    let mut digits = [0i32; 4];
    let mut n = 0;
    for &c in rest.iter().filter(|c| **c != b':') {
        if !c.is_ascii_digit() || n == digits.len() {
            return None;
        }
        digits[n] = i32::from(c - b'0');
        n += 1;
    }
    let (h, m) = match n {
        2 => (digits[0] * 10 + digits[1], 0),
        4 => (digits[0] * 10 + digits[1], digits[2] * 10 + digits[3]),
        _ => return None,
    };
    (h <= 23 && m <= 59).then_some(sign * (h * 3600 + m * 60))
}

/// Parses a `date` value. A full date-time is accepted and reduced to its UTC date.
pub fn parse_date(s: &str) -> Result<NaiveDate, String> {
    let s = s.trim();
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d);
    }
    parse_datetime(s)
        .map(|t| t.date_naive())
        .map_err(|_| format!("'{}' is not a date", truncate(s)))
}

/// Parses a `time` value (`10:23:45`, `10:23:45.5Z`, `12:23:45+02:00`) into UTC time of day.
pub fn parse_time(s: &str) -> Result<NaiveTime, String> {
    let s = s.trim();
    let bad = || format!("'{}' is not a time", truncate(s));
    let (time, offset) = split_offset(s).ok_or_else(bad)?;
    let t = NaiveTime::parse_from_str(time, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(time, "%H:%M"))
        .map_err(|_| bad())?;
    Ok(match offset {
        Some(o) => t - chrono::Duration::seconds(i64::from(o.local_minus_utc())),
        None => t,
    })
}

/// Formats an instant as RFC 3339 in UTC with `Z`, with as many fraction digits as needed.
pub fn format_datetime(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Normalises a date-time string to RFC 3339 UTC; `None` if it is not a date-time.
pub fn normalize_datetime(s: &str) -> Option<String> {
    parse_datetime(s).ok().map(|t| format_datetime(&t))
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(64) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_real_apis_send() {
        let cases = [
            ("2024-01-15T10:23:45Z", "2024-01-15T10:23:45Z"),
            ("2024-01-15T10:23:45.123Z", "2024-01-15T10:23:45.123Z"),
            ("2024-01-15T10:23:45.123456Z", "2024-01-15T10:23:45.123456Z"),
            ("2024-01-15T10:23:45.123+0000", "2024-01-15T10:23:45.123Z"),
            ("2024-01-15T12:23:45.123+0200", "2024-01-15T10:23:45.123Z"),
            ("2024-01-15T05:23:45-0500", "2024-01-15T10:23:45Z"),
            ("2024-01-15T12:23:45+02:00", "2024-01-15T10:23:45Z"),
            ("2024-01-15T10:23:45+00", "2024-01-15T10:23:45Z"),
            ("2024-01-15 10:23:45", "2024-01-15T10:23:45Z"),
            ("2024-01-15 10:23:45.5+00:00", "2024-01-15T10:23:45.500Z"),
            ("2024-01-15T10:23:45", "2024-01-15T10:23:45Z"),
            ("2024-01-15T10:23", "2024-01-15T10:23:00Z"),
            ("2024-01-15", "2024-01-15T00:00:00Z"),
            ("2024-01-15t10:23:45z", "2024-01-15T10:23:45Z"),
            ("2024-01-15 10:23:45 UTC", "2024-01-15T10:23:45Z"),
            ("2024-01-01T01:00:00+05:30", "2023-12-31T19:30:00Z"),
        ];
        for (input, want) in cases {
            let got = parse_datetime(input).map(|t| format_datetime(&t));
            assert_eq!(got.as_deref(), Ok(want), "{input}");
        }
    }

    proptest::proptest! {
        /// The digit-by-digit fast path reads every form exactly as the general parsers do.
        #[test]
        fn the_fast_path_agrees_with_the_general_parsers(
            y in 1i32..9999, mo in 1u32..13, d in 1u32..29, h in 0u32..24, mi in 0u32..60,
            sec in 0u32..60, frac in proptest::option::of("[0-9]{1,9}"),
            sep in proptest::sample::select(vec!["T", " ", "t"]),
            offset in proptest::sample::select(vec!["", "Z", "z", "+00:00", "-05:00", "+0530", "-1145", "+02", "+23:59"]),
        ) {
            let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
            let s = format!("{y:04}-{mo:02}-{d:02}{sep}{h:02}:{mi:02}:{sec:02}{frac}{offset}");
            let fast = parse_common(s.as_bytes());
            let general = DateTime::parse_from_rfc3339(&s)
                .map(|t| t.with_timezone(&Utc))
                .ok()
                .or_else(|| parse_lenient(&s));
            proptest::prop_assert!(fast.is_some(), "{s} not read by the fast path");
            proptest::prop_assert_eq!(fast, general, "{}", s);
        }
    }

    #[test]
    fn the_fast_path_leaves_odd_forms_to_the_general_parsers() {
        for s in [
            "2024-02-30T10:00:00Z",
            "2024-01-15T24:00:00Z",
            "2024-01-15T10:23:45.Z",
            "2024-01-15T10:23:45.1234567891Z",
            "2024-01-15T10:23:45+2400",
            "2024-01-15T10:23:45+1",
            "2024-01-15T10:23:60Z",
            "2024-01-15T10:23:45 UTC",
            "２０２４-01-15T10:23:45Z",
        ] {
            assert_eq!(parse_common(s.as_bytes()), None, "{s}");
        }
        // Leap second and ten fraction digits: the general parser still reads them.
        assert!(parse_datetime("2024-01-15T10:23:45.1234567891Z").is_ok());
    }

    #[test]
    fn garbage_is_refused_with_the_value() {
        for bad in [
            "",
            "yesterday",
            "2024-13-01",
            "2024-01-15X10:00",
            "2024-01-15T25:00:00Z",
            "2024-01-15T10:00:00+9999",
            "2024-01-15T10:00:00+ab",
            "ü2024-01-15",
        ] {
            let e = parse_datetime(bad).expect_err(bad);
            assert!(e.contains("is not a date-time"), "{e}");
        }
    }

    #[test]
    fn dates_and_times() {
        assert_eq!(
            parse_date("2024-02-29").map(|d| d.to_string()),
            Ok("2024-02-29".into())
        );
        assert_eq!(
            parse_date("2024-02-29T23:30:00-01:00").map(|d| d.to_string()),
            Ok("2024-03-01".into())
        );
        assert!(parse_date("2023-02-29").is_err());
        assert_eq!(
            parse_time("10:23:45").map(|t| t.to_string()),
            Ok("10:23:45".into())
        );
        assert_eq!(
            parse_time("12:23:45.25+02:00").map(|t| t.to_string()),
            Ok("10:23:45.250".into())
        );
        assert_eq!(
            parse_time("00:30:00+01:00").map(|t| t.to_string()),
            Ok("23:30:00".into())
        );
        assert!(parse_time("noon").is_err());
    }
}
