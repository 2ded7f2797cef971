//! Pipeline schedules: a ref, a cron pattern in a time zone, an owner the pipelines run as, and
//! variables of their own.

use super::Millis;
use serde::{Deserialize, Serialize};

/// One pipeline schedule (`Ci::PipelineSchedule`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineSchedule {
    /// Unique over the instance.
    pub id: u64,
    /// The project.
    pub project_id: u64,
    /// What it is for.
    pub description: String,
    /// The full ref (`refs/heads/main`, `refs/tags/v1`).
    pub ref_name: String,
    /// Five-field cron pattern.
    pub cron: String,
    /// IANA time zone the pattern is read in.
    pub cron_timezone: String,
    /// When it runs next (durable: the run at this time happens once).
    pub next_run_at: Millis,
    /// Whether it runs at all.
    pub active: bool,
    /// The user its pipelines run as.
    pub owner_id: u64,
    /// Creation time.
    pub created_at: Millis,
    /// Last change (including each run).
    pub updated_at: Millis,
    /// The newest pipeline it created.
    pub last_pipeline_id: Option<u64>,
    /// Why its last run made no pipeline (the owner's rights, a missing ref), until one does.
    #[serde(default)]
    pub last_error: Option<String>,
}

/// A schedule's pipeline. For a due run, the schedule's `next_run_at` as read and the one after
/// it: the pipeline's commit moves the schedule on only if it still shows `due`, so a run
/// happens once. A played run (`due: None`) leaves `next_run_at` alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleRun {
    /// The schedule.
    pub schedule_id: u64,
    /// Its `next_run_at` when the run began; `None` when a user played it.
    pub due: Option<Millis>,
    /// Its `next_run_at` afterwards.
    pub next: Millis,
}
