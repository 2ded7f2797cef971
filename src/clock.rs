//! Time for spur: the current instant in milliseconds, GitLab's ISO-8601 text form, and the
//! date and date-time forms its API accepts.

use crate::domain::Millis;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset};

/// Milliseconds since the Unix epoch, now.
pub fn now() -> Millis {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as Millis
}

/// GitLab's timestamp form: `2016-01-07T09:53:58.235Z`.
pub fn iso8601(ms: Millis) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// The date part only: `2026-11-26`.
pub fn date(ms: Millis) -> String {
    let format = format_description!("[year]-[month]-[day]");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_default()
}

/// Parses what GitLab's `DateTime`/`Date` parameters accept in practice: `YYYY-MM-DD`,
/// RFC 3339 (`2026-01-01T10:00:00Z`, with offset or fraction), or the same without a zone
/// (read as UTC). Anything else is `None`.
pub fn parse_datetime(s: &str) -> Option<Millis> {
    let s = s.trim();
    let to_ms = |t: OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as Millis;
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Some(to_ms(t));
    }
    let naive = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    if let Ok(t) = PrimitiveDateTime::parse(s, &naive) {
        return Some(to_ms(t.assume_offset(UtcOffset::UTC)));
    }
    let day = format_description!("[year]-[month]-[day]");
    Date::parse(s, &day)
        .ok()
        .map(|d| to_ms(d.midnight().assume_offset(UtcOffset::UTC)))
}

/// One day in milliseconds.
pub const DAY: Millis = 86_400_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_gitlab() {
        assert_eq!(iso8601(1_452_160_438_235), "2016-01-07T09:53:58.235Z");
        assert_eq!(date(1_452_160_438_235), "2016-01-07");
    }

    #[test]
    fn parses_dates_and_rejects_junk() {
        assert_eq!(parse_datetime("2016-01-07"), Some(1_452_124_800_000));
        assert_eq!(parse_datetime("2016-01-07T09:53:58.235Z"), Some(1_452_160_438_235));
        assert_eq!(parse_datetime("2016-01-07T09:53:58"), Some(1_452_160_438_000));
        for junk in ["abc", "01/01/2050", "25/26/27", "2308", ""] {
            assert_eq!(parse_datetime(junk), None, "{junk}");
        }
    }
}
