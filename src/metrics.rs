//! Counters and histograms for `/-/metrics` (Prometheus text format): triggers by outcome and
//! their latency, how long jobs wait before they start, jobs finished by status, pipelines
//! created by source, job log bytes. Lock-free atomics; rendering reads them once per scrape.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// A histogram with fixed upper bounds (seconds).
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    sum_us: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_us: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, seconds: f64) {
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            if seconds <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_us.fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in self.bounds.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", count.load(Ordering::Relaxed));
        }
        let total = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_us.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {total}");
    }
}

/// Outcomes of trigger requests, by the status answered.
pub const TRIGGER_OUTCOMES: [(u16, &str); 8] = [
    (201, "created"),
    (400, "bad_request"),
    (401, "unauthorized"),
    (403, "forbidden"),
    (404, "not_found"),
    (413, "too_large"),
    (422, "unprocessable"),
    (500, "error"),
];

/// Job ends counted.
pub const JOB_ENDS: [&str; 3] = ["success", "failed", "canceled"];

/// Pipeline sources counted.
pub const SOURCES: [&str; 7] = [
    "trigger",
    "pipeline",
    "parent_pipeline",
    "push",
    "web",
    "api",
    "external",
];

/// Everything spur counts.
pub struct Metrics {
    triggers: Vec<AtomicU64>,
    /// Trigger request latency, seconds.
    pub trigger_seconds: Histogram,
    /// From a job's queueing to its start, seconds.
    pub job_wait_seconds: Histogram,
    jobs_finished: Vec<AtomicU64>,
    pipelines_created: Vec<AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        const LATENCY: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];
        const WAIT: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0];
        Metrics {
            triggers: TRIGGER_OUTCOMES.iter().map(|_| AtomicU64::new(0)).collect(),
            trigger_seconds: Histogram::new(LATENCY),
            job_wait_seconds: Histogram::new(WAIT),
            jobs_finished: JOB_ENDS.iter().map(|_| AtomicU64::new(0)).collect(),
            pipelines_created: SOURCES.iter().map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

fn bump(counters: &[AtomicU64], i: Option<usize>) {
    if let Some(c) = i.and_then(|i| counters.get(i)) {
        c.fetch_add(1, Ordering::Relaxed);
    }
}

impl Metrics {
    /// Counts a trigger request answered with `status` after `seconds`.
    pub fn trigger(&self, status: u16, seconds: f64) {
        let status = if status >= 500 { 500 } else { status };
        bump(&self.triggers, TRIGGER_OUTCOMES.iter().position(|(s, _)| *s == status));
        self.trigger_seconds.observe(seconds);
    }

    /// Counts a job that ended as `status` (`success`, `failed`, `canceled`).
    pub fn job_finished(&self, status: &str) {
        bump(&self.jobs_finished, JOB_ENDS.iter().position(|s| *s == status));
    }

    /// Counts a pipeline created from `source`.
    pub fn pipeline_created(&self, source: &str) {
        bump(&self.pipelines_created, SOURCES.iter().position(|s| *s == source));
    }

    /// Renders the counters and histograms; `gauges` adds `(name, help, labels, value)` lines
    /// read at scrape time.
    pub fn render(&self, gauges: &[(&str, &str, String, f64)]) -> String {
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP spur_triggers_total Trigger requests by outcome.\n# TYPE spur_triggers_total counter"
        );
        for ((_, name), count) in TRIGGER_OUTCOMES.iter().zip(&self.triggers) {
            let _ = writeln!(
                out,
                "spur_triggers_total{{outcome=\"{name}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        self.trigger_seconds.render(
            "spur_trigger_duration_seconds",
            "Time to answer a trigger request.",
            &mut out,
        );
        self.job_wait_seconds.render(
            "spur_job_wait_seconds",
            "Time from a job's queueing to its start.",
            &mut out,
        );
        let _ = writeln!(
            out,
            "# HELP spur_jobs_finished_total Jobs that ended, by status.\n# TYPE spur_jobs_finished_total counter"
        );
        for (name, count) in JOB_ENDS.iter().zip(&self.jobs_finished) {
            let _ = writeln!(
                out,
                "spur_jobs_finished_total{{status=\"{name}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let _ = writeln!(
            out,
            "# HELP spur_pipelines_created_total Pipelines created, by source.\n# TYPE spur_pipelines_created_total counter"
        );
        for (name, count) in SOURCES.iter().zip(&self.pipelines_created) {
            let _ = writeln!(
                out,
                "spur_pipelines_created_total{{source=\"{name}\"}} {}",
                count.load(Ordering::Relaxed)
            );
        }
        let mut last = "";
        for (name, help, labels, value) in gauges {
            if *name != last {
                let kind = if name.ends_with("_total") { "counter" } else { "gauge" };
                let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
                last = name;
            }
            let _ = writeln!(out, "{name}{labels} {value}");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.trigger(201, 0.004);
        m.trigger(404, 0.0005);
        m.job_finished("success");
        let text = m.render(&[("spur_queue_depth", "Jobs waiting.", String::new(), 3.0)]);
        assert!(text.contains("spur_triggers_total{outcome=\"created\"} 1"));
        assert!(text.contains("spur_trigger_duration_seconds_bucket{le=\"0.005\"} 2"));
        assert!(text.contains("spur_trigger_duration_seconds_bucket{le=\"0.001\"} 1"));
        assert!(text.contains("spur_trigger_duration_seconds_count 2"));
        assert!(text.contains("spur_jobs_finished_total{status=\"success\"} 1"));
        assert!(text.contains("# TYPE spur_queue_depth gauge\nspur_queue_depth 3"));
    }
}
