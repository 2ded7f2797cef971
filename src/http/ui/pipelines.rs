//! Pipelines pages: the paginated list with the "Run pipeline" form, one pipeline drawn as
//! stages of jobs, and its cancel and retry buttons.

use super::{
    Layout, ProjectPost, UiError, ago, duration, id_in_path, page_number, project_page, project_post, redirect,
};
use crate::clock;
use crate::context::Spur;
use crate::domain::{AccessLevel, Job, JobStatus, Pipeline, PipelineSource, Variable, VariableType};
use crate::pipeline_create::{CreateRefusal, CreateRequest};
use crate::scheduler::Target;
use crate::storage::{PipelineFilter, PipelineOrder};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use std::collections::HashMap;

/// Rows per page.
const PER_PAGE: usize = 20;

/// A pipeline as the pages show it.
pub struct PipelineRow {
    id: u64,
    status: &'static str,
    source: &'static str,
    ref_name: String,
    short_sha: String,
    user: String,
    duration: String,
    created_iso: String,
    created_ago: String,
    /// Tests that failed or errored, when its jobs have test reports.
    failed_tests: Option<u64>,
    /// Its stages and each one's status (the list's mini-graph).
    stages: Vec<(String, &'static str)>,
    /// The commit's title.
    title: String,
    /// Child pipelines (id, status), shown under it.
    children: Vec<(u64, &'static str)>,
    /// It passed, but with allowed failures ("passed with warnings").
    warnings: bool,
    /// `running for` rather than `took`.
    running: bool,
    /// When it started (ms), for the page's ticking duration.
    started_ms: Option<i64>,
    /// Why `.gitlab-ci.yml` could not be read (the "yaml invalid" badge).
    yaml_errors: Option<String>,
}

fn row(spur: &Spur, p: &Pipeline, users: &mut HashMap<u64, String>, now: i64) -> PipelineRow {
    let user = users
        .entry(p.user_id)
        .or_insert_with(|| {
            spur.store
                .user(p.user_id)
                .ok()
                .flatten()
                .map_or_else(|| "unknown".into(), |u| u.username)
        })
        .clone();
    PipelineRow {
        id: p.id,
        status: p.status.as_str(),
        source: p.source.as_str(),
        ref_name: p.ref_name.clone(),
        short_sha: p.sha.chars().take(8).collect(),
        user,
        duration: duration(p.started_at, p.finished_at, now),
        created_iso: clock::iso8601(p.created_at),
        created_ago: ago(p.created_at, now),
        failed_tests: crate::test_reports::failed_count(spur, p.id).ok().flatten(),
        stages: Vec::new(),
        title: String::new(),
        children: Vec::new(),
        warnings: false,
        running: p.finished_at.is_none() && p.started_at.is_some(),
        started_ms: p.started_at,
        yaml_errors: p.yaml_errors.clone(),
    }
}

/// What the list shows besides the pipeline itself: the stage mini-graph, the commit title,
/// child pipelines and whether it passed with warnings.
fn with_details(spur: &Spur, project: &crate::domain::Project, p: &Pipeline, mut r: PipelineRow) -> PipelineRow {
    let jobs: Vec<Job> = spur
        .store
        .pipeline_jobs(p.id)
        .unwrap_or_default()
        .into_iter()
        .filter(|j| !j.retried)
        .collect();
    for j in &jobs {
        let status = if j.status == JobStatus::Failed && j.allow_failure {
            "warning"
        } else {
            j.status.as_str()
        };
        match r.stages.last_mut() {
            Some((name, s)) if *name == j.stage => *s = worse(s, status),
            _ => r.stages.push((j.stage.clone(), status)),
        }
        if j.bridge.is_some()
            && let Some((path, id, status)) = downstream_of(spur, j.id)
            && path == project.full_path
        {
            r.children.push((id, status));
        }
    }
    r.warnings = p.status == crate::domain::PipelineStatus::Success
        && jobs.iter().any(|j| j.status == JobStatus::Failed && j.allow_failure);
    let path = spur.repos.path_of(&project.repo_name, &crate::git::Origin::of(project));
    r.title = spur
        .repos
        .commit_info(&path, &p.sha)
        .map(|c| c.title.clone())
        .unwrap_or_default();
    r
}

/// The status a stage shows: the most pressing of its jobs'.
fn worse(a: &'static str, b: &'static str) -> &'static str {
    const ORDER: [&str; 9] = [
        "failed", "running", "pending", "canceled", "warning", "manual", "created", "success", "skipped",
    ];
    let rank = |s: &str| ORDER.iter().position(|o| *o == s).unwrap_or(ORDER.len());
    if rank(b) < rank(a) { b } else { a }
}

/// A typed field of the Run pipeline form, from `.gitlab-ci.yml`'s `spec:inputs`.
pub struct InputField {
    name: String,
    kind: &'static str,
    description: Option<String>,
    required: bool,
    value: String,
    /// The allowed values (a select), each with whether it is chosen.
    options: Vec<(String, bool)>,
}

impl InputField {
    fn of(spec: crate::ci_config::inputs::InputSpec) -> InputField {
        use crate::ci_config::yaml::{Yaml, to_json};
        let text = |y: &Yaml| match y {
            Yaml::Str(s) => s.clone(),
            other => to_json(other).to_string(),
        };
        let value = spec.default.as_ref().map(text).unwrap_or_default();
        let options = match (&spec.options, spec.kind) {
            (Some(options), _) => options.iter().map(|o| (text(o), text(o) == value)).collect(),
            (None, crate::ci_config::inputs::Kind::Boolean) => {
                ["true", "false"].iter().map(|o| (o.to_string(), *o == value)).collect()
            }
            (None, _) => Vec::new(),
        };
        InputField {
            name: spec.name,
            kind: spec.kind.name(),
            description: spec.description,
            required: spec.default.is_none(),
            value,
            options,
        }
    }
}

#[derive(Template)]
#[template(path = "pipelines.html")]
struct ListPage {
    l: Layout,
    full_path: String,
    rows: Vec<PipelineRow>,
    can_run: bool,
    /// The repository has no branch yet (an empty hosted project): nothing to run.
    empty: bool,
    run_open: bool,
    default_ref: String,
    inputs: Vec<InputField>,
    inputs_error: Option<String>,
    /// Why the last Run pipeline was refused: the field at fault (`ref`, `variables`,
    /// `inputs`) and the reason, shown beside that field.
    run_error: Option<(&'static str, String)>,
    /// The variable rows of the form (what was entered, then empty rows).
    variable_rows: Vec<(String, String)>,
    page: usize,
    total: usize,
    prev_page: Option<usize>,
    next_page: Option<usize>,
}

/// A refused Run pipeline: what was entered, and why it was refused.
struct Refused {
    ref_name: String,
    variables: Vec<(String, String)>,
    inputs: Vec<(String, String)>,
    field: &'static str,
    error: String,
}

/// `GET /{ns}/{project}/-/pipelines?page=N`: newest first, reading only the page's records.
pub async fn list(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (visitor, project, access) = project_page(&req, &spur, None).await?;
    render_list(&req, &spur, &visitor, &project, &access, None).await
}

/// The list page, with the Run pipeline form open again as it was sent when `refused`.
async fn render_list(
    req: &HttpRequest,
    spur: &web::Data<Spur>,
    visitor: &super::session::Visitor,
    project: &crate::domain::Project,
    access: &crate::auth::ProjectAccess,
    refused: Option<Refused>,
) -> Result<HttpResponse, UiError> {
    let page = page_number(req);
    let (pipelines, total) = spur.store.project_pipelines(
        project.id,
        &PipelineFilter::default(),
        PipelineOrder::Id,
        true,
        (page - 1) * PER_PAGE,
        PER_PAGE,
    )?;
    // The list's ETag: what its rows show moves a pipeline's `updated_at` (or its status).
    let shown: Vec<(u64, &str, i64)> = pipelines
        .iter()
        .map(|p| (p.id, p.status.as_str(), p.updated_at))
        .collect();
    let etag = super::live::etag_of(&(visitor.user.as_ref().map(|u| u.id), page, total, shown));
    if refused.is_none()
        && let Some(unchanged) = super::live::not_modified(req, &etag)
    {
        return Ok(unchanged);
    }
    let now = clock::now();
    let mut users = HashMap::new();
    // Child pipelines show under their parent, as on GitLab (a page's newest pipelines are read
    // through the index, so the count still includes them).
    let rows = pipelines
        .iter()
        .filter(|p| p.source != PipelineSource::ParentPipeline)
        .map(|p| with_details(spur, project, p, row(spur, p, &mut users, now)))
        .collect();
    let mut l = Layout::new(req, visitor, "Pipelines").in_project(project, access, "pipelines");
    l.etag = Some(etag.clone());
    let unfinished = |p: &&Pipeline| {
        use crate::domain::PipelineStatus as S;
        matches!(
            p.status,
            S::Created | S::Pending | S::Running | S::WaitingForResource | S::Preparing
        )
    };
    if refused.is_none() && pipelines.iter().any(|p| unfinished(&p)) {
        l.refresh = Some(10);
    }
    let empty = project.default_branch.is_none() && project.import_url.is_none();
    let can_run = visitor.user.is_some() && access.at_least(AccessLevel::Developer) && !empty;
    let asked_ref = refused
        .as_ref()
        .map(|r| r.ref_name.clone())
        .or_else(|| super::query(req, "ref"))
        .filter(|r| !r.trim().is_empty());
    let run_ref = asked_ref
        .clone()
        .unwrap_or_else(|| project.default_branch.clone().unwrap_or_else(|| "main".into()));
    let (mut inputs, inputs_error) = if can_run {
        let (s, p, r) = (spur.clone(), project.clone(), run_ref.clone());
        match web::block(move || crate::pipeline_create::declared_inputs(&s, &p, &r)).await {
            Ok(Ok(specs)) => (specs.into_iter().map(InputField::of).collect::<Vec<_>>(), None),
            Ok(Err(e)) => (Vec::new(), Some(e)),
            Err(e) => return Err(UiError::Internal(e.to_string())),
        }
    } else {
        (Vec::new(), None)
    };
    let (run_error, mut variable_rows) = match refused {
        Some(r) => {
            for field in inputs.iter_mut() {
                if let Some((_, v)) = r.inputs.iter().find(|(k, _)| *k == field.name) {
                    field.value = v.clone();
                    for (option, chosen) in field.options.iter_mut() {
                        *chosen = option == v;
                    }
                }
            }
            (Some((r.field, r.error)), r.variables)
        }
        None => (None, Vec::new()),
    };
    // One empty row past what was entered, so that a refused form can take one more.
    let wanted = (variable_rows.len() + 1).max(3);
    while variable_rows.len() < wanted {
        variable_rows.push((String::new(), String::new()));
    }
    let mut response = super::live::tagged_html(
        req,
        &ListPage {
            l,
            full_path: project.full_path.clone(),
            rows,
            can_run,
            empty,
            run_open: total == 0 || asked_ref.is_some(),
            default_ref: run_ref,
            inputs,
            inputs_error,
            run_error: run_error.clone(),
            variable_rows,
            page,
            total,
            prev_page: (page > 1).then(|| page - 1),
            next_page: (page * PER_PAGE < total).then_some(page + 1),
        },
        &etag,
    )?;
    if run_error.is_some() {
        *response.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

/// `POST /{ns}/{project}/-/pipelines`: "Run pipeline" (Developer+) with a ref and variables.
pub async fn run(req: HttpRequest, spur: web::Data<Spur>, payload: web::Payload) -> Result<HttpResponse, UiError> {
    let ProjectPost {
        form,
        user,
        project,
        access,
    } = project_post(&req, &spur, payload, AccessLevel::Developer).await?;
    let back = format!("/{}/-/pipelines", project.full_path);
    let keys = form.all("variables[][key]");
    let values = form.all("variables[][value]");
    let ref_name = form.get("ref").unwrap_or_default().trim().to_string();
    let entered: Vec<(String, String)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.to_string(), values.get(i).copied().unwrap_or_default().to_string()))
        .filter(|(k, v)| !k.trim().is_empty() || !v.is_empty())
        .take(50)
        .collect();
    let entered_inputs: Vec<(String, String)> = form
        .bracketed("inputs")
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let refuse = |field: &'static str, error: String| Refused {
        ref_name: ref_name.clone(),
        variables: entered.clone(),
        inputs: entered_inputs.clone(),
        field,
        error,
    };
    let visitor = super::session::visitor(&req, &spur).await?;
    let mut variables = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        if !crate::domain::is_valid_variable_key(key) {
            let text = format!("Variable key “{key}” can contain only letters, digits and '_'.");
            return render_list(
                &req,
                &spur,
                &visitor,
                &project,
                &access,
                Some(refuse("variables", text)),
            )
            .await;
        }
        variables.push(Variable {
            key: key.to_string(),
            value: values.get(i).copied().unwrap_or_default().to_string(),
            variable_type: VariableType::EnvVar,
            raw: false,
        });
    }
    let count = variables.len();
    // Typed fields arrive as text; an emptied field leaves the input to its default.
    let inputs = form
        .bracketed("inputs")
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k, serde_json::Value::String(v.to_string())))
        .collect();
    let request = CreateRequest {
        inputs,
        ..CreateRequest::new(PipelineSource::Web, user, access, ref_name.clone(), variables, count)
    };
    let created = crate::pipeline_create::create(spur.clone().into_inner(), project.clone(), request)
        .await
        .map_err(|e| UiError::Internal(format!("{e:?}")))?;
    match created {
        Ok(p) => Ok(redirect(&req, &format!("{back}/{}", p.id), None)),
        Err(CreateRefusal::NotFound) => Err(UiError::NotFound),
        Err(CreateRefusal::Invalid(text) | CreateRefusal::Unprocessable(text) | CreateRefusal::Unauthorized(text)) => {
            let (field, text) = if text == "Reference not found" {
                (
                    "ref",
                    format!("Reference not found: no branch or tag is named “{ref_name}”."),
                )
            } else if text.contains("input") {
                ("inputs", text)
            } else if text.contains("ariable") {
                ("variables", text)
            } else {
                ("ref", text)
            };
            render_list(&req, &spur, &visitor, &project, &access, Some(refuse(field, text))).await
        }
    }
}

/// A job in the pipeline graph or a list.
#[derive(Hash)]
pub struct JobCell {
    id: u64,
    name: String,
    status: &'static str,
    warning: bool,
    /// The jobs of the graph it `needs` (id, name), drawn as links.
    needs: Vec<(u64, String)>,
    /// For a bridge: the downstream pipeline (`path`, id, status).
    downstream: Option<(String, u64, &'static str)>,
}

/// A link to another pipeline.
pub struct PipelineLink {
    path: String,
    id: u64,
    job_id: u64,
}

/// One stage column.
#[derive(Hash)]
pub struct StageColumn {
    name: String,
    jobs: Vec<JobCell>,
}

#[derive(Template)]
#[template(path = "pipeline.html")]
struct ShowPage {
    l: Layout,
    full_path: String,
    p: PipelineRow,
    yaml_errors: Option<String>,
    upstream: Option<PipelineLink>,
    stages: Vec<StageColumn>,
    can_act: bool,
    cancelable: bool,
    retryable: bool,
    /// While jobs are unfinished: the page's script asks again (ms).
    live: Option<u32>,
}

/// The latest attempt of each job, grouped into stage columns in stage order; bridges carry
/// their downstream pipeline.
fn stage_columns(spur: &Spur, jobs: &[Job]) -> Vec<StageColumn> {
    let mut latest: Vec<&Job> = jobs.iter().filter(|j| !j.retried).collect();
    latest.sort_by_key(|j| (j.stage_index, j.id));
    let ids: HashMap<&str, u64> = latest.iter().map(|j| (j.name.as_str(), j.id)).collect();
    let mut columns: Vec<StageColumn> = Vec::new();
    for j in &latest {
        let downstream = if j.bridge.is_some() {
            downstream_of(spur, j.id)
        } else {
            None
        };
        let cell = JobCell {
            id: j.id,
            name: j.name.clone(),
            status: j.status.as_str(),
            warning: j.status == JobStatus::Failed && j.allow_failure,
            needs: (j.needs.iter().flatten())
                .filter_map(|n| ids.get(n.as_str()).map(|id| (*id, n.clone())))
                .collect(),
            downstream,
        };
        match columns.last_mut() {
            Some(c) if c.name == j.stage => c.jobs.push(cell),
            _ => columns.push(StageColumn {
                name: j.stage.clone(),
                jobs: vec![cell],
            }),
        }
    }
    columns
}

pub(super) fn downstream_of(spur: &Spur, job_id: u64) -> Option<(String, u64, &'static str)> {
    let id = spur.store.downstream_of(job_id).ok()??;
    let p = spur.store.pipeline(id).ok()??;
    let project = spur.store.project(p.project_id).ok()??;
    Some((project.full_path, p.id, p.status.as_str()))
}

fn upstream_of(spur: &Spur, pipeline: &Pipeline) -> Option<PipelineLink> {
    let up = pipeline.upstream.as_ref()?;
    let project = spur.store.project(up.project_id).ok()??;
    Some(PipelineLink {
        path: project.full_path,
        id: up.pipeline_id,
        job_id: up.job_id,
    })
}

/// `GET /{ns}/{project}/-/pipelines/{id}`.
pub async fn show(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (visitor, project, access) = project_page(&req, &spur, None).await?;
    let id = id_in_path(&req, "id")?;
    let pipeline = spur
        .store
        .pipeline(id)?
        .filter(|p| p.project_id == project.id)
        .ok_or(UiError::NotFound)?;
    let jobs = spur.store.pipeline_jobs(id)?;
    let latest = || jobs.iter().filter(|j| !j.retried);
    let now = clock::now();
    let stages = stage_columns(&spur, &jobs);
    let p = row(&spur, &pipeline, &mut HashMap::new(), now);
    let can_act = visitor.user.is_some() && access.at_least(AccessLevel::Developer);
    let active = latest().any(|j| matches!(j.status, JobStatus::Created | JobStatus::Pending | JobStatus::Running))
        || stages.iter().flat_map(|s| &s.jobs).any(|j| {
            j.downstream
                .as_ref()
                .is_some_and(|d| matches!(d.2, "created" | "pending" | "running"))
        });
    let etag = super::live::etag_of(&(
        visitor.user.as_ref().map(|u| u.id),
        can_act,
        pipeline.status.as_str(),
        pipeline.updated_at,
        &stages,
        p.failed_tests,
    ));
    if let Some(unchanged) = super::live::not_modified(&req, &etag) {
        return Ok(unchanged);
    }
    let mut l = Layout::new(&req, &visitor, format!("Pipeline #{id}")).in_project(&project, &access, "pipelines");
    if active {
        l.refresh = Some(5);
    }
    l.etag = Some(etag.clone());
    super::live::tagged_html(
        &req,
        &ShowPage {
            l,
            full_path: project.full_path.clone(),
            p,
            yaml_errors: pipeline.yaml_errors.clone(),
            upstream: upstream_of(&spur, &pipeline),
            stages,
            can_act,
            cancelable: latest().any(|j| j.status.is_active()),
            retryable: latest().any(|j| matches!(j.status, JobStatus::Failed | JobStatus::Canceled)),
            live: active.then_some(3000),
        },
        &etag,
    )
}

/// Refuses (403) a change to pipeline `id` the user may not make on its (protected) ref.
pub(super) fn may_update(spur: &Spur, id: u64, access: &crate::auth::ProjectAccess) -> Result<(), UiError> {
    let pipeline = spur.store.pipeline(id)?.ok_or(UiError::NotFound)?;
    match crate::protected_refs::may_update_pipeline(spur, &pipeline, access) {
        Ok(true) => Ok(()),
        Ok(false) => Err(UiError::Forbidden(format!(
            "You do not have sufficient permission to run a pipeline on '{}'. Please select a different branch or contact your administrator for assistance.",
            pipeline.ref_name
        ))),
        Err(e) => Err(UiError::Internal(e)),
    }
}

/// `POST /{ns}/{project}/-/pipelines/{id}/cancel|retry` (Developer+).
pub async fn act(req: HttpRequest, spur: web::Data<Spur>, payload: web::Payload) -> Result<HttpResponse, UiError> {
    let ProjectPost {
        user, project, access, ..
    } = project_post(&req, &spur, payload, AccessLevel::Developer).await?;
    let id = id_in_path(&req, "id")?;
    spur.store
        .pipeline(id)?
        .filter(|p| p.project_id == project.id)
        .ok_or(UiError::NotFound)?;
    may_update(&spur, id, &access)?;
    let outcome = match req.match_info().get("action") {
        Some("cancel") => spur.scheduler.cancel(Target::Pipeline(id)).await.map(|_| None),
        Some("retry") => spur.scheduler.retry(Target::Pipeline(id), user.id).await,
        _ => return Err(UiError::NotFound),
    };
    outcome.map_err(|e| UiError::BadRequest(format!("{e:?}")))?;
    Ok(redirect(
        &req,
        &format!("/{}/-/pipelines/{id}", project.full_path),
        None,
    ))
}
