//! Cron patterns in a time zone, as GitLab reads a schedule's `cron` and `cron_timezone`:
//! five fields (minute, hour, day of month, month, day of week; names and `@daily` allowed), an
//! IANA zone, and exact next-run times across daylight-saving changes.

use crate::domain::Millis;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Longest pattern read.
const MAX_PATTERN: usize = 255;

/// A parsed pattern and zone.
#[derive(Debug, Clone)]
pub struct CronSpec {
    cron: Cron,
    zone: TimeZone,
}

/// Which field is wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CronError {
    /// `cron` does not parse (or never matches).
    Cron,
    /// `cron_timezone` names no zone.
    Timezone,
}

impl CronSpec {
    /// Parses `cron` in zone `timezone` (an IANA name, `UTC` included).
    pub fn parse(cron: &str, timezone: &str) -> Result<CronSpec, CronError> {
        let zone = zone(timezone).ok_or(CronError::Timezone)?;
        let cron = pattern(cron).ok_or(CronError::Cron)?;
        let spec = CronSpec { cron, zone };
        // A pattern that never matches (February 30th) is invalid too.
        spec.next_after(crate::clock::now()).ok_or(CronError::Cron)?;
        Ok(spec)
    }

    /// The first time strictly after `after` that the pattern matches in its zone; `None` when
    /// it never does.
    pub fn next_after(&self, after: Millis) -> Option<Millis> {
        let start = Timestamp::from_millisecond(after).ok()?.to_zoned(self.zone.clone());
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(next.timestamp().as_millisecond())
    }

    /// The next `n` times after `after`.
    pub fn upcoming(&self, after: Millis, n: usize) -> Vec<Millis> {
        let mut out = Vec::with_capacity(n);
        let mut at = after;
        while out.len() < n {
            let Some(next) = self.next_after(at) else { break };
            out.push(next);
            at = next;
        }
        out
    }

    /// The pattern in English words (`At 02:00 AM, on Monday`).
    pub fn describe(&self) -> String {
        self.cron.describe()
    }

    /// `millis` as the zone's local time, `2026-12-07 14:00 CET`.
    pub fn local(&self, millis: Millis) -> String {
        match Timestamp::from_millisecond(millis) {
            Ok(t) => t.to_zoned(self.zone.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string(),
            Err(_) => String::new(),
        }
    }
}

/// Whether `timezone` names a zone.
pub fn zone(timezone: &str) -> Option<TimeZone> {
    if timezone.is_empty() || timezone.len() > 100 {
        return None;
    }
    TimeZone::get(timezone).ok()
}

fn pattern(cron: &str) -> Option<Cron> {
    let cron = cron.trim();
    if cron.is_empty() || cron.len() > MAX_PATTERN {
        return None;
    }
    // Five fields (or a nickname): GitLab's schedules take no seconds and no years.
    if !cron.starts_with('@') && cron.split_whitespace().count() != 5 {
        return None;
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(cron)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Millis {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn iso(millis: Millis) -> String {
        Timestamp::from_millisecond(millis).unwrap().to_string()
    }

    #[test]
    fn bad_patterns_and_zones_are_refused() {
        for bad in [
            "* * *",
            "",
            "* * * * * *",
            "61 * * * *",
            "0 0 30 2 *",
            "nonsense",
            "* * * * MOON",
        ] {
            assert_eq!(CronSpec::parse(bad, "UTC").unwrap_err(), CronError::Cron, "{bad}");
        }
        for bad in ["Mars/Base", "", "../../etc/passwd", "Europe/Berlin\0"] {
            assert_eq!(
                CronSpec::parse("* * * * *", bad).unwrap_err(),
                CronError::Timezone,
                "{bad}"
            );
        }
        assert!(CronSpec::parse("@daily", "Asia/Tokyo").is_ok());
        assert!(CronSpec::parse("0 4 * * MON-FRI", "America/New_York").is_ok());
    }

    #[test]
    fn next_runs_are_exact_in_the_zone_across_dst() {
        let every_minute = CronSpec::parse("* * * * *", "UTC").unwrap();
        assert_eq!(
            iso(every_minute.next_after(at("2026-12-07T10:00:00Z")).unwrap()),
            "2026-12-07T10:01:00Z"
        );
        assert_eq!(
            iso(every_minute.next_after(at("2026-12-07T10:00:30Z")).unwrap()),
            "2026-12-07T10:01:00Z"
        );
        // 02:00 in Tokyo (no DST) is 17:00 UTC the day before.
        let tokyo = CronSpec::parse("0 2 * * *", "Asia/Tokyo").unwrap();
        assert_eq!(
            iso(tokyo.next_after(at("2026-12-07T10:00:00Z")).unwrap()),
            "2026-12-07T17:00:00Z"
        );
        // Berlin: 03:00 local is 02:00 UTC in winter and 01:00 UTC in summer.
        let berlin = CronSpec::parse("0 3 * * *", "Europe/Berlin").unwrap();
        let days = berlin.upcoming(at("2026-03-27T12:00:00Z"), 3);
        let days: Vec<String> = days.into_iter().map(iso).collect();
        assert_eq!(
            days,
            ["2026-03-28T02:00:00Z", "2026-03-29T01:00:00Z", "2026-03-30T01:00:00Z"]
        );
        // 02:30 does not exist on the spring-forward night; it is neither skipped forever nor run twice.
        let gap = CronSpec::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let runs: Vec<Millis> = gap.upcoming(at("2026-03-28T12:00:00Z"), 2);
        assert_eq!(runs.len(), 2);
        assert!(runs[0] < runs[1] && runs[1] - runs[0] <= 25 * 3_600_000, "{runs:?}");
        // 02:30 happens twice on the fall-back night: one run.
        let runs: Vec<String> = gap
            .upcoming(at("2026-10-24T12:00:00Z"), 2)
            .into_iter()
            .map(iso)
            .collect();
        assert_eq!(runs[0], "2026-10-25T00:30:00Z");
        assert_eq!(runs[1], "2026-10-26T01:30:00Z");
    }

    #[test]
    fn words_and_local_times_for_the_form() {
        let spec = CronSpec::parse("0 2 * * 1", "Europe/Berlin").unwrap();
        assert!(!spec.describe().is_empty());
        assert_eq!(spec.local(at("2026-12-07T01:00:00Z")), "2026-12-07 02:00 CET");
    }
}
