//! Pipeline schedules (`/projects/:id/pipeline_schedules`, Build > Pipeline schedules): the one
//! owner of their changes, GitLab's rules of who may do what (`PipelineSchedulePolicy`), and
//! the runner that makes each due run's pipeline once (`runner`). Knows nothing of HTTP.

pub mod cron;
mod runner;

pub use runner::spawn;

use crate::auth::ProjectAccess;
use crate::clock;
use crate::context::Spur;
use crate::domain::{
    AccessLevel, Millis, Pipeline, PipelineSchedule, Project, ScheduleRun, User, Variable, VariableType,
};
use cron::{CronError, CronSpec};
use std::sync::Arc;

/// Most variables a schedule keeps.
pub const MAX_VARIABLES: usize = 200;
/// Longest description.
const MAX_DESCRIPTION: usize = 255;

/// Why a change was refused, with GitLab's status and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// 400 `{"message": {field: [text]}}`: a field is wrong (GitLab's model errors).
    Invalid(&'static str, String),
    /// 403: the caller may not do this.
    Forbidden,
    /// 404: no such schedule or variable.
    NotFound(&'static str),
    /// 429: played too often.
    TooMany,
}

/// Fields of a schedule as sent; absent ones are unchanged (or defaulted on create).
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// `description`.
    pub description: Option<String>,
    /// `ref`, short or full.
    pub ref_name: Option<String>,
    /// `cron`.
    pub cron: Option<String>,
    /// `cron_timezone` (default `UTC`).
    pub cron_timezone: Option<String>,
    /// `active` (default true).
    pub active: Option<bool>,
}

/// Reporters and up see a project's schedules (`read_pipeline_schedule`).
pub fn may_read(access: &ProjectAccess) -> bool {
    access.at_least(AccessLevel::Reporter)
}

/// Maintainers, and the owner while a Developer, administer a schedule: delete it, see its
/// variables (`admin_pipeline_schedule`).
pub fn may_admin(schedule: &PipelineSchedule, user: &User, access: &ProjectAccess) -> bool {
    access.at_least(AccessLevel::Maintainer)
        || (schedule.owner_id == user.id && access.at_least(AccessLevel::Developer))
}

/// Only the owner (a Developer or more) or an administrator edits a schedule
/// (`update_pipeline_schedule`); a Maintainer takes ownership first.
pub fn may_update(schedule: &PipelineSchedule, user: &User, access: &ProjectAccess) -> bool {
    user.admin || (schedule.owner_id == user.id && access.at_least(AccessLevel::Developer))
}

/// The ref's short name and whether it is a tag, from a full ref.
pub fn short_ref(full: &str) -> (&str, bool) {
    match full.strip_prefix("refs/tags/") {
        Some(tag) => (tag, true),
        None => (full.strip_prefix("refs/heads/").unwrap_or(full), false),
    }
}

/// The full ref of `name` in the project's repository: `refs/heads/x` or `refs/tags/x`; GitLab's
/// `is ambiguous` when both or neither exist.
fn expand_ref(spur: &Spur, project: &Project, name: &str) -> Result<String, Refusal> {
    let path = spur.repos.path_of(&project.repo_name, &crate::git::Origin::of(project));
    match spur.repos.resolve(&path, name) {
        Ok(r) if r.tag => Ok(format!("refs/tags/{}", r.short)),
        Ok(r) => Ok(format!("refs/heads/{}", r.short)),
        Err(_) => Err(Refusal::Invalid("ref", "is ambiguous".into())),
    }
}

/// Whether `access` may run pipelines on the schedule's ref (protected refs included).
fn may_run_on(spur: &Spur, project: &Project, full_ref: &str, access: &ProjectAccess) -> Result<bool, String> {
    let (short, tag) = short_ref(full_ref);
    Ok(access.at_least(AccessLevel::Developer)
        && crate::protected_refs::pipeline_rights(spur, project.id, short, tag, access)?.may_run)
}

/// Parses on the blocking pool: a pattern that never matches is searched for years ahead.
async fn spec_of(cron: &str, timezone: &str) -> Result<CronSpec, Refusal> {
    let (cron, timezone) = (cron.to_string(), timezone.to_string());
    let parsed = tokio::task::spawn_blocking(move || CronSpec::parse(&cron, &timezone))
        .await
        .map_err(|_| Refusal::Invalid("cron", " is invalid syntax".into()))?;
    parsed.map_err(|e| match e {
        CronError::Cron => Refusal::Invalid("cron", " is invalid syntax".into()),
        CronError::Timezone => Refusal::Invalid("cron_timezone", " is invalid syntax".into()),
    })
}

/// The next run after `after`, at least `--min-schedule-interval` after `last_run` when given.
pub fn next_run(spur: &Spur, spec: &CronSpec, after: Millis, last_run: Option<Millis>) -> Millis {
    let floor = last_run.map_or(after, |r| after.max(r + spur.min_schedule_interval_ms - 1));
    spec.next_after(floor).unwrap_or(Millis::MAX)
}

fn check_variables(project: &Project, access: &ProjectAccess, variables: &[Variable]) -> Result<(), Refusal> {
    if variables.is_empty() {
        return Ok(());
    }
    if !project.variables_override_role.allows(access.level) {
        return Err(Refusal::Invalid(
            "base",
            "The current user is not authorized to set pipeline schedule variables".into(),
        ));
    }
    if variables.len() > MAX_VARIABLES {
        return Err(Refusal::Invalid("variables", format!("are more than {MAX_VARIABLES}")));
    }
    for (i, v) in variables.iter().enumerate() {
        if !crate::domain::is_valid_variable_key(&v.key) {
            return Err(Refusal::Invalid(
                "variables.key",
                "can contain only letters, digits and '_'.".into(),
            ));
        }
        if variables[..i].iter().any(|w| w.key == v.key) {
            return Err(Refusal::Invalid("variables.key", "has already been taken".into()));
        }
    }
    Ok(())
}

/// `POST /pipeline_schedules`: Developers and up, on a ref they may run pipelines on.
pub async fn create(
    spur: &Spur,
    project: &Project,
    user: &User,
    access: &ProjectAccess,
    input: Input,
    variables: Vec<Variable>,
) -> Result<Result<PipelineSchedule, Refusal>, String> {
    if !access.at_least(AccessLevel::Developer) {
        return Ok(Err(Refusal::Forbidden));
    }
    let description = input.description.unwrap_or_default().trim().to_string();
    if description.is_empty() {
        return Ok(Err(Refusal::Invalid("description", "can't be blank".into())));
    }
    if description.len() > MAX_DESCRIPTION {
        return Ok(Err(Refusal::Invalid(
            "description",
            "is too long (maximum is 255 characters)".into(),
        )));
    }
    let cron_text = input.cron.unwrap_or_default();
    let timezone = input.cron_timezone.unwrap_or_else(|| "UTC".into());
    let spec = match spec_of(&cron_text, &timezone).await {
        Ok(s) => s,
        Err(r) => return Ok(Err(r)),
    };
    let full_ref = match expand_ref(spur, project, input.ref_name.as_deref().unwrap_or_default()) {
        Ok(r) => r,
        Err(r) => return Ok(Err(r)),
    };
    if !may_run_on(spur, project, &full_ref, access)? {
        return Ok(Err(Refusal::Invalid(
            "base",
            "The current user is not authorized to create the pipeline schedule".into(),
        )));
    }
    if let Err(r) = check_variables(project, access, &variables) {
        return Ok(Err(r));
    }
    let now = clock::now();
    let schedule = PipelineSchedule {
        id: 0,
        project_id: project.id,
        description,
        ref_name: full_ref,
        cron: cron_text.trim().to_string(),
        cron_timezone: timezone,
        next_run_at: next_run(spur, &spec, now, None),
        active: input.active.unwrap_or(true),
        owner_id: user.id,
        created_at: now,
        updated_at: now,
        last_pipeline_id: None,
        last_error: None,
    };
    let sealed = seal(spur, &variables)?;
    match spur
        .store
        .create_schedule(schedule, sealed)
        .await
        .map_err(|e| e.to_string())?
    {
        Some(created) => {
            spur.schedules_changed.notify_one();
            Ok(Ok(created))
        }
        None => Ok(Err(Refusal::Invalid(
            "base",
            format!(
                "Maximum number of ci pipeline schedules ({}) exceeded",
                crate::storage::MAX_SCHEDULES
            ),
        ))),
    }
}

/// A schedule of `project`, or 404.
pub fn find(spur: &Spur, project: &Project, id: u64) -> Result<Result<PipelineSchedule, Refusal>, String> {
    match spur.store.schedule(id).map_err(|e| e.to_string())? {
        Some(s) if s.project_id == project.id => Ok(Ok(s)),
        _ => Ok(Err(Refusal::NotFound("Pipeline Schedule"))),
    }
}

/// A schedule of `project` the caller may act on (`allowed`), else 404 or 403.
fn find_allowed(
    spur: &Spur,
    project: &Project,
    id: u64,
    allowed: impl FnOnce(&PipelineSchedule) -> bool,
) -> Result<Result<PipelineSchedule, Refusal>, String> {
    Ok(find(spur, project, id)?.and_then(|s| if allowed(&s) { Ok(s) } else { Err(Refusal::Forbidden) }))
}

/// `PUT /pipeline_schedules/:id`: the owner (or an administrator); a new cron, zone or
/// activation recomputes the next run.
pub async fn update(
    spur: &Spur,
    project: &Project,
    user: &User,
    access: &ProjectAccess,
    id: u64,
    input: Input,
) -> Result<Result<PipelineSchedule, Refusal>, String> {
    let mut schedule = match find(spur, project, id)? {
        Ok(s) => s,
        Err(r) => return Ok(Err(r)),
    };
    if !may_update(&schedule, user, access) {
        return Ok(Err(Refusal::Forbidden));
    }
    if let Some(d) = input.description {
        let d = d.trim().to_string();
        if d.is_empty() {
            return Ok(Err(Refusal::Invalid("description", "can't be blank".into())));
        }
        if d.len() > MAX_DESCRIPTION {
            return Ok(Err(Refusal::Invalid(
                "description",
                "is too long (maximum is 255 characters)".into(),
            )));
        }
        schedule.description = d;
    }
    if let Some(r) = input.ref_name {
        schedule.ref_name = match expand_ref(spur, project, &r) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
    }
    if !may_run_on(spur, project, &schedule.ref_name, access)? {
        return Ok(Err(Refusal::Invalid(
            "base",
            "The current user is not authorized to update the pipeline schedule".into(),
        )));
    }
    let retime = input.cron.is_some() || input.cron_timezone.is_some() || input.active == Some(true);
    if let Some(c) = input.cron {
        schedule.cron = c.trim().to_string();
    }
    if let Some(tz) = input.cron_timezone {
        schedule.cron_timezone = tz;
    }
    if let Some(a) = input.active {
        schedule.active = a;
    }
    let spec = match spec_of(&schedule.cron, &schedule.cron_timezone).await {
        Ok(s) => s,
        Err(r) => return Ok(Err(r)),
    };
    let now = clock::now();
    // A new pattern keeps the minimum interval after the last run.
    let last_run = schedule
        .last_pipeline_id
        .and_then(|p| spur.store.pipeline(p).ok().flatten())
        .map(|p| p.created_at);
    let next = retime.then(|| next_run(spur, &spec, now, last_run));
    // Only the fields changed here are written, in the write itself: a run committed
    // meanwhile keeps its `next_run_at` and last pipeline.
    let edited = schedule.clone();
    let saved = spur
        .store
        .change_schedule(id, move |s| {
            s.description = edited.description;
            s.ref_name = edited.ref_name;
            s.cron = edited.cron;
            s.cron_timezone = edited.cron_timezone;
            s.active = edited.active;
            if let Some(next) = next {
                s.next_run_at = next;
            }
            s.updated_at = now;
        })
        .await
        .map_err(|e| e.to_string())?;
    let Some(saved) = saved else {
        return Ok(Err(Refusal::NotFound("Pipeline Schedule")));
    };
    spur.schedules_changed.notify_one();
    Ok(Ok(saved))
}

/// `update`, and the schedule's variables replaced by `variables` (the form's whole set).
pub async fn update_with_variables(
    spur: &Spur,
    project: &Project,
    user: &User,
    access: &ProjectAccess,
    id: u64,
    input: Input,
    new_variables: Vec<Variable>,
) -> Result<Result<PipelineSchedule, Refusal>, String> {
    let current = variables(spur, id)?;
    let changed = current != new_variables;
    if changed && let Err(r) = check_variables(project, access, &new_variables) {
        return Ok(Err(r));
    }
    let schedule = match update(spur, project, user, access, id, input).await? {
        Ok(s) => s,
        Err(r) => return Ok(Err(r)),
    };
    if changed {
        let sealed = seal(spur, &new_variables)?;
        spur.store
            .put_schedule_variables(id, sealed)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(Ok(schedule))
}

/// `POST /pipeline_schedules/:id/take_ownership`: a Maintainer (or the owner) makes it theirs.
pub async fn take_ownership(
    spur: &Spur,
    project: &Project,
    user: &User,
    access: &ProjectAccess,
    id: u64,
) -> Result<Result<PipelineSchedule, Refusal>, String> {
    if let Err(r) = find_allowed(spur, project, id, |s| may_admin(s, user, access))? {
        return Ok(Err(r));
    }
    let (owner, now) = (user.id, clock::now());
    let saved = spur
        .store
        .change_schedule(id, move |s| {
            s.owner_id = owner;
            s.updated_at = now;
        })
        .await
        .map_err(|e| e.to_string())?;
    Ok(saved.ok_or(Refusal::NotFound("Pipeline Schedule")))
}

/// `DELETE /pipeline_schedules/:id`: Maintainers, or the owner.
pub async fn delete(
    spur: &Spur,
    project: &Project,
    user: &User,
    access: &ProjectAccess,
    id: u64,
) -> Result<Result<(), Refusal>, String> {
    if let Err(r) = find_allowed(spur, project, id, |s| may_admin(s, user, access))? {
        return Ok(Err(r));
    }
    spur.store.delete_schedule(id).await.map_err(|e| e.to_string())?;
    spur.schedules_changed.notify_one();
    Ok(Ok(()))
}

/// `POST /pipeline_schedules/:id/play`: runs it now as the caller (a Developer who may run
/// pipelines on its ref), once a minute per user and schedule; the next scheduled run stays.
pub async fn play(
    spur: &Arc<Spur>,
    project: &Project,
    user: &User,
    access: &ProjectAccess,
    id: u64,
) -> Result<Result<(), Refusal>, String> {
    let schedule = match find(spur, project, id)? {
        Ok(s) => s,
        Err(r) => return Ok(Err(r)),
    };
    if !may_run_on(spur, project, &schedule.ref_name, access)? {
        return Ok(Err(Refusal::Forbidden));
    }
    let key = u64::from_le_bytes(
        blake3::hash(format!("{}:{}", user.id, schedule.id).as_bytes()).as_bytes()[..8]
            .try_into()
            .unwrap_or_default(),
    );
    if spur.schedule_play_quota.take(key).is_err() {
        return Ok(Err(Refusal::TooMany));
    }
    let run = ScheduleRun {
        schedule_id: schedule.id,
        due: None,
        next: schedule.next_run_at,
    };
    runner::run_as(spur, project.clone(), &schedule, user.clone(), *access, run).await?;
    Ok(Ok(()))
}

/// A schedule's variables, unsealed.
pub fn variables(spur: &Spur, schedule_id: u64) -> Result<Vec<Variable>, String> {
    match spur.store.schedule_variables(schedule_id).map_err(|e| e.to_string())? {
        Some(sealed) => {
            let plain = spur.secrets.unseal(&sealed).map_err(|e| format!("{e:?}"))?;
            serde_json::from_slice(&plain).map_err(|e| e.to_string())
        }
        None => Ok(Vec::new()),
    }
}

fn seal(spur: &Spur, variables: &[Variable]) -> Result<Vec<u8>, String> {
    let plain = serde_json::to_vec(variables).map_err(|e| e.to_string())?;
    spur.secrets.seal(&plain).map_err(|e| format!("{e:?}"))
}

/// What a variable change does.
#[derive(Debug, Clone)]
pub enum VariableChange {
    /// `POST .../variables`: a new key (400 when taken).
    Create(Variable),
    /// `PUT .../variables/:key`: the value or type of an existing key.
    Update(String, Option<String>, Option<VariableType>),
    /// `DELETE .../variables/:key`.
    Delete(String),
}

/// Changes one variable of a schedule: whoever may edit the schedule, within the project's
/// minimum role for pipeline variables. Answers the variable as it is (or was, when deleted).
pub async fn change_variable(
    spur: &Spur,
    project: &Project,
    user: &User,
    access: &ProjectAccess,
    id: u64,
    change: VariableChange,
) -> Result<Result<Variable, Refusal>, String> {
    let schedule = match find(spur, project, id)? {
        Ok(s) => s,
        Err(r) => return Ok(Err(r)),
    };
    // Adding or changing a variable changes what runs as the owner: the owner's (GitLab's
    // `update_pipeline_schedule`); Maintainers take ownership first. Deleting is theirs too.
    let allowed = match change {
        VariableChange::Delete(_) => may_update(&schedule, user, access) || may_admin(&schedule, user, access),
        _ => may_update(&schedule, user, access),
    };
    if !allowed {
        return Ok(Err(Refusal::Forbidden));
    }
    if !project.variables_override_role.allows(access.level) {
        return Ok(Err(Refusal::Forbidden));
    }
    let mut vars = variables(spur, id)?;
    let answer = match change {
        VariableChange::Create(v) => {
            let mut all = vars.clone();
            all.push(v.clone());
            if let Err(r) = check_variables(project, access, &all) {
                let r = match r {
                    Refusal::Invalid(_, text) => Refusal::Invalid("key", text),
                    other => other,
                };
                return Ok(Err(r));
            }
            vars = all;
            v
        }
        VariableChange::Update(key, value, kind) => {
            let Some(v) = vars.iter_mut().find(|v| v.key == key) else {
                return Ok(Err(Refusal::NotFound("Pipeline Schedule Variable")));
            };
            if let Some(value) = value {
                v.value = value;
            }
            if let Some(kind) = kind {
                v.variable_type = kind;
            }
            v.clone()
        }
        VariableChange::Delete(key) => {
            let Some(at) = vars.iter().position(|v| v.key == key) else {
                return Ok(Err(Refusal::NotFound("Pipeline Schedule Variable")));
            };
            vars.remove(at)
        }
    };
    let sealed = seal(spur, &vars)?;
    if !spur
        .store
        .put_schedule_variables(schedule.id, sealed)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(Err(Refusal::NotFound("Pipeline Schedule")));
    }
    Ok(Ok(answer))
}

/// The pipelines a schedule made that still exist, oldest first.
pub fn pipelines(spur: &Spur, schedule_id: u64) -> Result<Vec<Pipeline>, String> {
    let ids = spur.store.schedule_pipelines(schedule_id).map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(p) = spur.store.pipeline(id).map_err(|e| e.to_string())? {
            out.push(p);
        }
    }
    Ok(out)
}
