//! Operate > Environments (`/{ns}/{project}/-/environments`): each environment with its state,
//! URL and last deployment (commit, job, who, when), a Stop button, and one page a environment
//! with its deployment history. Changes go through `crate::environments`.

use super::{Layout, UiError, html, id_in_path, project_page, project_post, redirect};
use crate::clock;
use crate::context::Spur;
use crate::domain::{AccessLevel, Deployment, Job, deployment_status};
use crate::environments::Shown;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

/// A deployment as the pages show it.
struct DeploymentRow {
    iid: u64,
    status: &'static str,
    job_id: u64,
    job_name: String,
    pipeline_id: u64,
    short_sha: String,
    ref_name: String,
    user: String,
    when: String,
}

/// An environment row.
struct EnvRow {
    id: u64,
    name: String,
    state: &'static str,
    tier: String,
    url: Option<String>,
    last: Option<DeploymentRow>,
}

#[derive(Template)]
#[template(path = "environments.html")]
struct ListPage {
    l: Layout,
    full_path: String,
    rows: Vec<EnvRow>,
    can_stop: bool,
}

#[derive(Template)]
#[template(path = "environment.html")]
struct ShowPage {
    l: Layout,
    full_path: String,
    env: EnvRow,
    history: Vec<DeploymentRow>,
    can_stop: bool,
}

fn deployment_row(spur: &Spur, d: &Deployment, j: &Job) -> DeploymentRow {
    let pipeline = spur.store.pipeline(j.pipeline_id).ok().flatten();
    DeploymentRow {
        iid: d.iid,
        status: deployment_status(j.status),
        job_id: j.id,
        job_name: j.name.clone(),
        pipeline_id: j.pipeline_id,
        short_sha: pipeline
            .as_ref()
            .map(|p| p.sha.chars().take(8).collect())
            .unwrap_or_default(),
        ref_name: pipeline.map(|p| p.ref_name).unwrap_or_default(),
        user: spur
            .store
            .user(j.user_id)
            .ok()
            .flatten()
            .map(|u| u.username)
            .unwrap_or_default(),
        when: clock::iso8601(j.finished_at.or(j.started_at).unwrap_or(d.created_at)),
    }
}

fn env_row(spur: &Spur, s: &Shown) -> EnvRow {
    EnvRow {
        id: s.env.id,
        name: s.env.name.clone(),
        state: s.state,
        tier: s.env.tier.clone(),
        // Only web links are shown as links (a URL from `.gitlab-ci.yml` is a user's input).
        url: s
            .env
            .external_url
            .clone()
            .filter(|u| u.starts_with("https://") || u.starts_with("http://")),
        last: s.last.as_ref().map(|(d, j)| deployment_row(spur, d, j)),
    }
}

/// `GET /{ns}/{project}/-/environments`.
pub async fn list(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (visitor, project, access) = project_page(&req, &spur, None).await?;
    if !crate::environments::may_read(&project, &access) {
        return Err(UiError::NotFound);
    }
    let (s, project_id) = (spur.clone(), project.id);
    let all = web::block(move || crate::environments::deployments(&s, project_id))
        .await
        .map_err(|e| UiError::Internal(e.to_string()))?
        .map_err(UiError::Internal)?;
    let rows = spur
        .store
        .environments(project.id)?
        .into_iter()
        .map(|e| env_row(&spur, &crate::environments::show(e, &all)))
        .collect();
    let l = Layout::new(&req, &visitor, "Environments").in_project(&project, &access, "environments");
    html(
        &req,
        &ListPage {
            l,
            full_path: project.full_path.clone(),
            rows,
            can_stop: visitor.user.is_some() && access.at_least(AccessLevel::Developer),
        },
    )
}

/// `GET /{ns}/{project}/-/environments/{id}`: the environment and its deployments, newest first.
pub async fn show(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    let (visitor, project, access) = project_page(&req, &spur, None).await?;
    if !crate::environments::may_read(&project, &access) {
        return Err(UiError::NotFound);
    }
    let id = id_in_path(&req, "id")?;
    let (s, project_id) = (spur.clone(), project.id);
    let all = web::block(move || crate::environments::deployments(&s, project_id))
        .await
        .map_err(|e| UiError::Internal(e.to_string()))?
        .map_err(UiError::Internal)?;
    let env = spur
        .store
        .environment(id)?
        .filter(|e| e.project_id == project.id)
        .ok_or(UiError::NotFound)?;
    let shown = crate::environments::show(env, &all);
    let history = all
        .iter()
        .rev()
        .filter(|(d, _)| d.environment_id == id && d.action == "start")
        .take(100)
        .map(|(d, j)| deployment_row(&spur, d, j))
        .collect();
    let l = Layout::new(&req, &visitor, shown.env.name.clone()).in_project(&project, &access, "environments");
    html(
        &req,
        &ShowPage {
            l,
            full_path: project.full_path.clone(),
            env: env_row(&spur, &shown),
            history,
            can_stop: visitor.user.is_some() && access.at_least(AccessLevel::Developer),
        },
    )
}

/// `POST /{ns}/{project}/-/environments/{id}/stop` (Developer+).
pub async fn stop(req: HttpRequest, spur: web::Data<Spur>, payload: web::Payload) -> Result<HttpResponse, UiError> {
    let post = project_post(&req, &spur, payload, AccessLevel::Developer).await?;
    let id = id_in_path(&req, "id")?;
    let stopped = crate::environments::stop(&spur, &post.project, &post.user, &post.access, id, false)
        .await
        .map_err(UiError::Internal)?;
    let back = format!("/{}/-/environments/{id}", post.project.full_path);
    Ok(match stopped {
        Ok(s) if s.state == "stopping" => {
            redirect(&req, &back, Some(("notice", "The environment's stop job is running.")))
        }
        Ok(_) => redirect(&req, &back, Some(("notice", "The environment was stopped."))),
        Err(_) => return Err(UiError::NotFound),
    })
}
