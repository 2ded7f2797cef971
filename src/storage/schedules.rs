//! Pipeline schedules, their sealed variables and the pipelines each made.

use super::codec::{decode, encode, get_json};
use super::tables::{PROJECT_SCHEDULES, SCHEDULE_PIPELINES, SCHEDULE_VARIABLES, SCHEDULES};
use super::{Error, Store, ids_under, next_id};
use crate::domain::{Millis, PipelineSchedule, ScheduleRun};
use redb::{ReadableTable, WriteTransaction};

/// Most schedules a project keeps.
pub const MAX_SCHEDULES: usize = 1_000;

impl Store {
    /// Stores a new schedule with its sealed variables, giving it an id; `None` when the project
    /// has as many as it may keep.
    pub async fn create_schedule(
        &self,
        schedule: PipelineSchedule,
        variables_sealed: Vec<u8>,
    ) -> Result<Option<PipelineSchedule>, Error> {
        self.write(move |tx| {
            let mut schedule = schedule;
            let count = ids_under(&tx.open_table(PROJECT_SCHEDULES)?, schedule.project_id)?.len();
            if count >= MAX_SCHEDULES {
                return Ok(None);
            }
            schedule.id = next_id(tx, "next_schedule_id")?;
            tx.open_table(SCHEDULES)?
                .insert(schedule.id, encode(&schedule)?.as_slice())?;
            tx.open_table(PROJECT_SCHEDULES)?
                .insert((schedule.project_id, schedule.id), ())?;
            tx.open_table(SCHEDULE_VARIABLES)?
                .insert(schedule.id, variables_sealed.as_slice())?;
            Ok(Some(schedule))
        })
        .await
    }

    /// A schedule by id.
    pub fn schedule(&self, id: u64) -> Result<Option<PipelineSchedule>, Error> {
        self.read(|tx| get_json(&tx.open_table(SCHEDULES)?, id))
    }

    /// A project's schedules, in id order.
    pub fn project_schedules(&self, project_id: u64) -> Result<Vec<PipelineSchedule>, Error> {
        self.read(|tx| {
            let ids = ids_under(&tx.open_table(PROJECT_SCHEDULES)?, project_id)?;
            let table = tx.open_table(SCHEDULES)?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(s) = get_json(&table, id)? {
                    out.push(s);
                }
            }
            Ok(out)
        })
    }

    /// Every schedule of the instance (the scheduler's view).
    pub fn all_schedules(&self) -> Result<Vec<PipelineSchedule>, Error> {
        self.read(|tx| {
            let mut out = Vec::new();
            for entry in tx.open_table(SCHEDULES)?.iter()? {
                out.push(decode(entry?.1.value())?);
            }
            Ok(out)
        })
    }

    /// Changes a schedule in the write itself (so that a run committed meanwhile is kept);
    /// answers it as changed, `None` when it is gone.
    pub async fn change_schedule(
        &self,
        id: u64,
        change: impl FnOnce(&mut PipelineSchedule) + Send + 'static,
    ) -> Result<Option<PipelineSchedule>, Error> {
        self.write(move |tx| {
            let found: Option<PipelineSchedule> = get_json(&tx.open_table(SCHEDULES)?, id)?;
            let Some(mut schedule) = found else {
                return Ok(None);
            };
            change(&mut schedule);
            tx.open_table(SCHEDULES)?.insert(id, encode(&schedule)?.as_slice())?;
            Ok(Some(schedule))
        })
        .await
    }

    /// Replaces a schedule's sealed variables; false when it is gone.
    pub async fn put_schedule_variables(&self, id: u64, sealed: Vec<u8>) -> Result<bool, Error> {
        self.write(move |tx| {
            if tx.open_table(SCHEDULES)?.get(id)?.is_none() {
                return Ok(false);
            }
            tx.open_table(SCHEDULE_VARIABLES)?.insert(id, sealed.as_slice())?;
            Ok(true)
        })
        .await
    }

    /// Deletes a schedule, its variables and its list of pipelines (the pipelines stay).
    pub async fn delete_schedule(&self, id: u64) -> Result<bool, Error> {
        self.write(move |tx| remove_schedule(tx, id)).await
    }

    /// A schedule's variables, sealed.
    pub fn schedule_variables(&self, id: u64) -> Result<Option<Vec<u8>>, Error> {
        self.read(|tx| Ok(tx.open_table(SCHEDULE_VARIABLES)?.get(id)?.map(|g| g.value().to_vec())))
    }

    /// The ids of the pipelines a schedule made, oldest first.
    pub fn schedule_pipelines(&self, id: u64) -> Result<Vec<u64>, Error> {
        self.read(|tx| ids_under(&tx.open_table(SCHEDULE_PIPELINES)?, id))
    }

    /// Records a run that made no pipeline: moves the schedule on and keeps why; false when the
    /// run was done already (the schedule no longer shows `due`) or the schedule is gone.
    pub async fn schedule_missed(&self, run: ScheduleRun, error: String, now: Millis) -> Result<bool, Error> {
        self.write(move |tx| {
            let Some(mut schedule) = current(tx, run)? else {
                return Ok(false);
            };
            schedule.next_run_at = run.next;
            schedule.updated_at = now;
            schedule.last_error = Some(error);
            tx.open_table(SCHEDULES)?
                .insert(schedule.id, encode(&schedule)?.as_slice())?;
            Ok(true)
        })
        .await
    }
}

impl Store {
    /// Keeps why a played run made no pipeline.
    pub async fn schedule_note(&self, id: u64, error: String) -> Result<(), Error> {
        self.write(move |tx| {
            let found: Option<PipelineSchedule> = get_json(&tx.open_table(SCHEDULES)?, id)?;
            if let Some(mut schedule) = found {
                schedule.last_error = Some(error);
                tx.open_table(SCHEDULES)?.insert(id, encode(&schedule)?.as_slice())?;
            }
            Ok(())
        })
        .await
    }
}

/// The schedule of `run` if it still shows the run's due time.
fn current(tx: &WriteTransaction, run: ScheduleRun) -> Result<Option<PipelineSchedule>, Error> {
    let schedule: Option<PipelineSchedule> = get_json(&tx.open_table(SCHEDULES)?, run.schedule_id)?;
    Ok(schedule.filter(|s| run.due.is_none_or(|due| s.next_run_at == due)))
}

/// Whether `run` is still to be made (checked in the pipeline's commit before anything is
/// written).
pub(super) fn is_due(tx: &WriteTransaction, run: ScheduleRun) -> Result<bool, Error> {
    Ok(current(tx, run)?.is_some())
}

/// In a pipeline's commit, after `is_due`: moves the schedule on and records the pipeline as
/// its last.
pub(super) fn record_run(tx: &WriteTransaction, run: ScheduleRun, pipeline_id: u64, now: Millis) -> Result<(), Error> {
    let Some(mut schedule) = current(tx, run)? else {
        return Ok(());
    };
    if run.due.is_some() {
        schedule.next_run_at = run.next;
        schedule.updated_at = now;
    }
    schedule.last_pipeline_id = Some(pipeline_id);
    schedule.last_error = None;
    tx.open_table(SCHEDULES)?
        .insert(schedule.id, encode(&schedule)?.as_slice())?;
    tx.open_table(SCHEDULE_PIPELINES)?
        .insert((schedule.id, pipeline_id), ())?;
    Ok(())
}

/// Removes a schedule and what hangs off it.
fn remove_schedule(tx: &WriteTransaction, id: u64) -> Result<bool, Error> {
    let Some(schedule): Option<PipelineSchedule> = get_json(&tx.open_table(SCHEDULES)?, id)? else {
        return Ok(false);
    };
    tx.open_table(SCHEDULES)?.remove(id)?;
    tx.open_table(PROJECT_SCHEDULES)?.remove((schedule.project_id, id))?;
    tx.open_table(SCHEDULE_VARIABLES)?.remove(id)?;
    tx.open_table(SCHEDULE_PIPELINES)?
        .retain_in((id, 0)..=(id, u64::MAX), |_, _| false)?;
    Ok(true)
}

/// Removes every schedule of a project (the project is being deleted).
pub(super) fn remove_project_schedules(tx: &WriteTransaction, project_id: u64) -> Result<(), Error> {
    for id in ids_under(&tx.open_table(PROJECT_SCHEDULES)?, project_id)? {
        remove_schedule(tx, id)?;
    }
    Ok(())
}
