//! Build > Pipeline schedules (`/{ns}/{project}/-/pipeline_schedules`): the list (next run,
//! owner, last pipeline), the new and edit form with the cron read back in words and its next
//! five runs (a Preview button asks the server, so it works without scripts), and play, take
//! ownership and delete. Every change goes through `crate::schedules`.

use super::{Layout, ProjectPost, UiError, html, id_in_path, project_page, project_post, redirect};
use crate::clock;
use crate::context::Spur;
use crate::domain::{AccessLevel, PipelineSchedule, Project, Variable, VariableType};
use crate::schedules::cron::CronSpec;
use crate::schedules::{Input, Refusal};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

/// One row of the list.
struct Row {
    id: u64,
    description: String,
    target: String,
    tag: bool,
    active: bool,
    next_run: String,
    next_run_iso: String,
    owner: String,
    last_pipeline: Option<(u64, &'static str)>,
    last_error: Option<String>,
    can_play: bool,
    can_edit: bool,
    can_take: bool,
    can_delete: bool,
}

#[derive(Template)]
#[template(path = "pipeline_schedules.html")]
struct ListPage {
    l: Layout,
    full_path: String,
    rows: Vec<Row>,
    can_create: bool,
}

/// The form as entered, with the preview of its cron.
#[derive(Default)]
struct FormValues {
    description: String,
    cron: String,
    cron_timezone: String,
    ref_name: String,
    active: bool,
    variables: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "pipeline_schedule_form.html")]
struct FormPage {
    l: Layout,
    full_path: String,
    /// `None` for a new schedule.
    id: Option<u64>,
    f: FormValues,
    /// (field, message) of a refused save.
    error: Option<(String, String)>,
    /// The cron in words and its next runs, when it reads.
    preview: Option<(String, Vec<String>)>,
}

fn describe(s: &PipelineSchedule) -> (String, String) {
    if !s.active || s.next_run_at == i64::MAX {
        return ("Inactive".into(), String::new());
    }
    let when = CronSpec::parse(&s.cron, &s.cron_timezone)
        .map_or_else(|_| clock::iso8601(s.next_run_at), |c| c.local(s.next_run_at));
    (when, clock::iso8601(s.next_run_at))
}

/// `GET /{ns}/{project}/-/pipeline_schedules`: Reporters and up.
pub async fn list(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (visitor, project, access) = project_page(&req, &spur, Some(AccessLevel::Reporter)).await?;
    let user = visitor.user.clone();
    let mut rows = Vec::new();
    for s in spur.store.project_schedules(project.id)? {
        let (next_run, next_run_iso) = describe(&s);
        let owner = spur.store.user(s.owner_id)?.map(|u| u.username).unwrap_or_default();
        let last_pipeline = s
            .last_pipeline_id
            .and_then(|id| spur.store.pipeline(id).ok().flatten())
            .map(|p| (p.id, p.status.as_str()));
        let (short, tag) = crate::schedules::short_ref(&s.ref_name);
        let admin = user
            .as_ref()
            .is_some_and(|u| crate::schedules::may_admin(&s, u, &access));
        rows.push(Row {
            id: s.id,
            description: s.description.clone(),
            target: short.to_string(),
            tag,
            active: s.active,
            next_run,
            next_run_iso,
            owner,
            last_pipeline,
            last_error: s.last_error.clone(),
            can_play: access.at_least(AccessLevel::Developer),
            can_edit: user
                .as_ref()
                .is_some_and(|u| crate::schedules::may_update(&s, u, &access)),
            can_take: admin && user.as_ref().is_some_and(|u| u.id != s.owner_id),
            can_delete: admin,
        });
    }
    let l = Layout::new(&req, &visitor, "Pipeline schedules").in_project(&project, &access, "schedules");
    html(
        &req,
        &ListPage {
            l,
            full_path: project.full_path.clone(),
            rows,
            can_create: access.at_least(AccessLevel::Developer),
        },
    )
}

fn preview(cron: &str, timezone: &str) -> Option<(String, Vec<String>)> {
    let spec = CronSpec::parse(cron, timezone).ok()?;
    let runs = spec
        .upcoming(clock::now(), 5)
        .into_iter()
        .map(|t| spec.local(t))
        .collect();
    Some((spec.describe(), runs))
}

async fn form_page(
    req: &HttpRequest,
    l: Layout,
    project: &Project,
    id: Option<u64>,
    f: FormValues,
    error: Option<(String, String)>,
) -> Result<HttpResponse, UiError> {
    let (cron, tz) = (f.cron.clone(), f.cron_timezone.clone());
    // Off the request's thread: a pattern that never matches is searched for years ahead.
    let preview = web::block(move || preview(&cron, &tz)).await.ok().flatten();
    let mut variables = f.variables;
    variables.push((String::new(), String::new()));
    html(
        req,
        &FormPage {
            l,
            full_path: project.full_path.clone(),
            id,
            f: FormValues { variables, ..f },
            error,
            preview,
        },
    )
}

/// `GET .../pipeline_schedules/new`: Developers and up.
pub async fn new(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (visitor, project, access) = project_page(&req, &spur, Some(AccessLevel::Developer)).await?;
    let l = Layout::new(&req, &visitor, "New pipeline schedule").in_project(&project, &access, "schedules");
    let f = FormValues {
        cron: "0 4 * * *".into(),
        cron_timezone: "UTC".into(),
        ref_name: project.default_branch.clone().unwrap_or_else(|| "main".into()),
        active: true,
        ..FormValues::default()
    };
    form_page(&req, l, &project, None, f, None).await
}

/// `GET .../pipeline_schedules/{id}/edit`: the owner (or an administrator).
pub async fn edit(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (visitor, project, access) = project_page(&req, &spur, Some(AccessLevel::Developer)).await?;
    let id = id_in_path(&req, "id")?;
    let s = crate::schedules::find(&spur, &project, id)
        .map_err(UiError::Internal)?
        .map_err(|_| UiError::NotFound)?;
    let user = visitor.user.clone().ok_or(UiError::NotFound)?;
    if !crate::schedules::may_update(&s, &user, &access) {
        return Err(UiError::Forbidden(
            "Only the schedule's owner edits it; take ownership first.".into(),
        ));
    }
    let variables = crate::schedules::variables(&spur, id)
        .map_err(UiError::Internal)?
        .into_iter()
        .map(|v| (v.key, v.value))
        .collect();
    let l = Layout::new(&req, &visitor, "Edit pipeline schedule").in_project(&project, &access, "schedules");
    let f = FormValues {
        description: s.description.clone(),
        cron: s.cron.clone(),
        cron_timezone: s.cron_timezone.clone(),
        ref_name: crate::schedules::short_ref(&s.ref_name).0.to_string(),
        active: s.active,
        variables,
    };
    form_page(&req, l, &project, Some(id), f, None).await
}

fn values(post: &ProjectPost) -> FormValues {
    let form = &post.form;
    let keys = form.all("variables[][key]");
    let vals = form.all("variables[][value]");
    FormValues {
        description: form.get("description").unwrap_or_default().to_string(),
        cron: form.get("cron").unwrap_or_default().to_string(),
        cron_timezone: form.get("cron_timezone").unwrap_or("UTC").to_string(),
        ref_name: form.get("ref").unwrap_or_default().to_string(),
        active: form.get("active").is_some(),
        variables: keys
            .iter()
            .zip(vals.iter().chain(std::iter::repeat(&"")))
            .filter(|(k, _)| !k.trim().is_empty())
            .map(|(k, v)| (k.trim().to_string(), (*v).to_string()))
            .collect(),
    }
}

fn field_message(r: Refusal) -> (String, String) {
    match r {
        Refusal::Invalid(field, text) => {
            let text = text.trim().to_string();
            let label = match field {
                "cron" => "Interval pattern",
                "cron_timezone" => "Cron timezone",
                "ref" => "Target branch or tag",
                "description" => "Description",
                _ => "",
            };
            let shown = if label.is_empty() {
                text
            } else {
                format!("{label} {text}")
            };
            (field.split('.').next().unwrap_or(field).to_string(), shown)
        }
        Refusal::Forbidden => ("base".into(), "You may not change this schedule.".into()),
        Refusal::NotFound(_) => ("base".into(), "The schedule no longer exists.".into()),
        Refusal::TooMany => ("base".into(), "Played too often; try again in a minute.".into()),
    }
}

/// `POST .../pipeline_schedules` (create) and `POST .../pipeline_schedules/{id}` (update);
/// `preview` re-renders the form with the cron read back.
pub async fn save(req: HttpRequest, spur: web::Data<Spur>, payload: web::Payload) -> Result<HttpResponse, UiError> {
    let post = project_post(&req, &spur, payload, AccessLevel::Developer).await?;
    let id = req.match_info().get("id").and_then(|i| i.parse::<u64>().ok());
    let f = values(&post);
    let title = if id.is_some() {
        "Edit pipeline schedule"
    } else {
        "New pipeline schedule"
    };
    let visitor = super::session::visitor(&req, &spur).await?;
    let layout = || Layout::new(&req, &visitor, title).in_project(&post.project, &post.access, "schedules");
    if post.form.get("preview").is_some() {
        return form_page(&req, layout(), &post.project, id, f, None).await;
    }
    let input = Input {
        description: Some(f.description.clone()),
        ref_name: Some(f.ref_name.clone()),
        cron: Some(f.cron.clone()),
        cron_timezone: Some(f.cron_timezone.clone()),
        active: Some(f.active),
    };
    // A variable the form shows unchanged keeps its type (a file stays a file).
    let current = match id {
        Some(id) => crate::schedules::variables(&spur, id).map_err(UiError::Internal)?,
        None => Vec::new(),
    };
    let variables: Vec<Variable> = f
        .variables
        .iter()
        .map(|(k, v)| {
            let kept = current.iter().find(|c| &c.key == k);
            Variable {
                key: k.clone(),
                value: v.clone(),
                variable_type: kept.map_or(VariableType::EnvVar, |c| c.variable_type),
                raw: kept.is_some_and(|c| c.raw),
            }
        })
        .collect();
    let saved = match id {
        None => crate::schedules::create(&spur, &post.project, &post.user, &post.access, input, variables).await,
        Some(id) => {
            crate::schedules::update_with_variables(
                &spur,
                &post.project,
                &post.user,
                &post.access,
                id,
                input,
                variables,
            )
            .await
        }
    }
    .map_err(UiError::Internal)?;
    match saved {
        Ok(_) => Ok(redirect(
            &req,
            &format!("/{}/-/pipeline_schedules", post.project.full_path),
            Some(("notice", "The pipeline schedule was saved.")),
        )),
        Err(r) => {
            let error = field_message(r);
            form_page(&req, layout(), &post.project, id, f, Some(error)).await
        }
    }
}

/// `POST .../pipeline_schedules/{id}/play|take_ownership|delete`.
pub async fn act(req: HttpRequest, spur: web::Data<Spur>, payload: web::Payload) -> Result<HttpResponse, UiError> {
    let post = project_post(&req, &spur, payload, AccessLevel::Developer).await?;
    let id = id_in_path(&req, "id")?;
    let (p, user, access) = (&post.project, &post.user, &post.access);
    let s = spur.clone().into_inner();
    let outcome = match req.match_info().get("action") {
        Some("play") => crate::schedules::play(&s, p, user, access, id)
            .await
            .map(|r| r.map(|()| "The pipeline schedule is running.")),
        Some("take_ownership") => crate::schedules::take_ownership(&s, p, user, access, id)
            .await
            .map(|r| r.map(|_| "You own the pipeline schedule now.")),
        Some("delete") => crate::schedules::delete(&s, p, user, access, id)
            .await
            .map(|r| r.map(|()| "The pipeline schedule was deleted.")),
        _ => return Err(UiError::NotFound),
    }
    .map_err(UiError::Internal)?;
    let back = format!("/{}/-/pipeline_schedules", p.full_path);
    Ok(match outcome {
        Ok(text) => redirect(&req, &back, Some(("notice", text))),
        Err(r) => redirect(&req, &back, Some(("alert", &field_message(r).1))),
    })
}
