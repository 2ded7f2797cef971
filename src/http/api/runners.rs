//! Runner registration and management: the runner-facing calls (`POST /runners` with the
//! instance registration token, `POST /runners/verify`, `DELETE /runners`,
//! `DELETE /runners/managers`) that authenticate with the runner's own token, and the admin
//! calls (`POST /user/runners`, `GET /runners/all`, `GET|PUT|DELETE /runners/:id`).

use super::id_segment;
use crate::domain::{Runner, RunnerInfo};
use crate::http::error::ApiError;
use crate::http::params::{Params, form_pairs, read_body};
use crate::http::views;
use crate::http::{State, json_response, signed_in};
use crate::runners::{self, NewRunner};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

/// Reads a runner call's parameters; repeated `tag_list` form keys (as Python clients send
/// them) are all kept.
async fn runner_params(req: &HttpRequest, payload: web::Payload, spur: &State) -> Result<Params, ApiError> {
    let body = read_body(req, payload, spur.max_body_bytes).await?;
    let form = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    let repeated: Vec<String> = if form {
        form_pairs(&body)
            .into_iter()
            .filter(|(k, _)| k == "tag_list")
            .map(|(_, v)| v)
            .collect()
    } else {
        Vec::new()
    };
    let mut params = Params::parse(req, body).await?;
    if repeated.len() > 1 {
        params.0.insert("tag_list".into(), json!(repeated));
    }
    Ok(params)
}

fn invalid(param: &str) -> ApiError {
    ApiError::Params(format!("{param} is invalid"))
}

/// The runner whose token the `token` parameter carries; 403 otherwise.
fn runner_by_token(spur: &State, params: &Params) -> Result<Runner, ApiError> {
    let token = params.string("token").map_err(|_| invalid("token"))?;
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Err(ApiError::Params("token is missing".into()));
    };
    runners::authenticate(spur, &token)
        .map_err(ApiError::internal)?
        .ok_or_else(ApiError::forbidden)
}

/// The settings shared by registration and admin creation.
fn settings(params: &Params, created_by_admin: bool) -> Result<NewRunner, ApiError> {
    let tags = params.string_list("tag_list").map_err(|_| invalid("tag_list"))?;
    let paused = match (params.boolean("paused"), params.boolean("active")) {
        (Ok(Some(p)), _) => p,
        (Ok(None), Ok(Some(active))) => !active,
        (Ok(None), Ok(None)) => false,
        (Err(_), _) => return Err(invalid("paused")),
        (_, Err(_)) => return Err(invalid("active")),
    };
    let access_level = params.string("access_level").map_err(|_| invalid("access_level"))?;
    if access_level
        .as_deref()
        .is_some_and(|a| a != "not_protected" && a != "ref_protected")
    {
        return Err(ApiError::Params("access_level does not have a valid value".into()));
    }
    let maximum_timeout = params
        .integer("maximum_timeout")
        .map_err(|_| invalid("maximum_timeout"))?;
    if maximum_timeout.is_some_and(|t| t < 600) {
        return Err(ApiError::invalid("maximum_timeout", "needs to be at least 10 minutes"));
    }
    Ok(NewRunner {
        description: params
            .string("description")
            .map_err(|_| invalid("description"))?
            .unwrap_or_default(),
        tags: tags.unwrap_or_default(),
        run_untagged: params
            .boolean("run_untagged")
            .map_err(|_| invalid("run_untagged"))?
            .unwrap_or(true),
        paused,
        access_level,
        maximum_timeout: maximum_timeout.map(|t| t as u64),
        created_by_admin,
        info: info(params),
    })
}

/// The runner's `info` object, leniently.
pub(crate) fn info(params: &Params) -> RunnerInfo {
    let Some(Value::Object(info)) = params.get("info") else {
        return RunnerInfo::default();
    };
    let text = |k: &str| info.get(k).and_then(Value::as_str).map(str::to_string);
    RunnerInfo {
        name: text("name"),
        version: text("version"),
        platform: text("platform"),
        architecture: text("architecture"),
        executor: text("executor"),
    }
}

/// A runner with no tags that may not run untagged jobs could never run anything.
fn check_runnable(new: &NewRunner) -> Result<(), ApiError> {
    if new.tags.is_empty() && !new.run_untagged {
        return Err(ApiError::invalid(
            "tags_list",
            "can not be empty when runner is not allowed to pick untagged jobs",
        ));
    }
    Ok(())
}

fn registration_details(runner: &Runner, token: &str) -> HttpResponse {
    json_response(StatusCode::CREATED, &views::runner_registration(runner, token))
}

/// `POST /runners`: registers a runner with the instance registration token (legacy flow).
pub async fn register(req: HttpRequest, payload: web::Payload, spur: State) -> Result<HttpResponse, ApiError> {
    let params = runner_params(&req, payload, &spur).await?;
    let token = params
        .string("token")
        .map_err(|_| invalid("token"))?
        .unwrap_or_default();
    if token.is_empty() {
        return Err(ApiError::Params("token is missing".into()));
    }
    if !runners::is_registration_token(&spur, &token).map_err(ApiError::internal)? {
        return Err(ApiError::forbidden());
    }
    let new = settings(&params, false)?;
    check_runnable(&new)?;
    let (runner, token) = runners::create(&spur, new).await.map_err(ApiError::internal)?;
    tracing::info!(runner_id = runner.id, "runner registered");
    Ok(registration_details(&runner, &token))
}

/// `POST /runners/verify`: 200 with the runner's details when the token is valid.
pub async fn verify(req: HttpRequest, payload: web::Payload, spur: State) -> Result<HttpResponse, ApiError> {
    let params = runner_params(&req, payload, &spur).await?;
    let runner = runner_by_token(&spur, &params)?;
    let system_id = params.string("system_id").ok().flatten();
    runners::touch(&spur, &runner, system_id.as_deref(), Some(info(&params))).await;
    let token = params.string("token").ok().flatten().unwrap_or_default();
    Ok(json_response(
        StatusCode::OK,
        &views::runner_registration(&runner, &token),
    ))
}

/// `DELETE /runners`: the runner unregisters itself.
pub async fn unregister(req: HttpRequest, payload: web::Payload, spur: State) -> Result<HttpResponse, ApiError> {
    let params = runner_params(&req, payload, &spur).await?;
    let runner = runner_by_token(&spur, &params)?;
    crate::runners::delete_runner(&spur, runner.id).await?;
    tracing::info!(runner_id = runner.id, "runner unregistered");
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /runners/managers`: one host (`system_id`) stops using the runner's token.
pub async fn unregister_manager(
    req: HttpRequest,
    payload: web::Payload,
    spur: State,
) -> Result<HttpResponse, ApiError> {
    let params = runner_params(&req, payload, &spur).await?;
    let mut runner = runner_by_token(&spur, &params)?;
    let system_id = params.string("system_id").map_err(|_| invalid("system_id"))?;
    let Some(system_id) = system_id.filter(|s| !s.is_empty()) else {
        return Err(ApiError::Params("system_id is missing".into()));
    };
    let before = runner.managers.len();
    runner.managers.retain(|m| *m != system_id);
    if runner.managers.len() == before {
        return Err(ApiError::not_found(""));
    }
    crate::runners::update_runner(&spur, runner).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in administrator; 401 anonymous, 403 for everyone else.
async fn admin(req: &HttpRequest, spur: &State) -> Result<(), ApiError> {
    let actor = signed_in(req, spur).await?;
    if !actor.user.admin {
        return Err(ApiError::forbidden());
    }
    Ok(())
}

/// `POST /user/runners`: an administrator creates an instance runner and gets its `glrt-`
/// token (GitLab's current flow; `gitlab-runner register --token glrt-…` then only verifies).
pub async fn create(req: HttpRequest, payload: web::Payload, spur: State) -> Result<HttpResponse, ApiError> {
    admin(&req, &spur).await?;
    let params = runner_params(&req, payload, &spur).await?;
    match params
        .string("runner_type")
        .map_err(|_| invalid("runner_type"))?
        .as_deref()
    {
        None => return Err(ApiError::Params("runner_type is missing".into())),
        Some("instance_type") => {}
        Some("group_type" | "project_type") => {
            return Err(ApiError::bad_request(
                "spur has instance runners only; use runner_type instance_type",
            ));
        }
        Some(_) => return Err(ApiError::Params("runner_type does not have a valid value".into())),
    }
    let new = settings(&params, true)?;
    check_runnable(&new)?;
    let (runner, token) = runners::create(&spur, new).await.map_err(ApiError::internal)?;
    tracing::info!(runner_id = runner.id, "runner created");
    Ok(registration_details(&runner, &token))
}

/// `GET /runners/all` (administrators): every runner, filtered by `type` (spur's runners
/// are all `instance_type`), `status`, `paused` and `tag_list` (all of them), paginated.
pub async fn list(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    admin(&req, &spur).await?;
    filtered(&req, &spur, false)
}

/// `GET /runners`: the runners the caller owns (project and group runners of what they
/// maintain, as GitLab's `ci_owned_runners`), with the same filters. Every runner spur
/// registers is an instance runner, which nobody owns, so the list holds none of them.
pub async fn owned(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    signed_in(&req, &spur).await?;
    filtered(&req, &spur, true)
}

fn filtered(req: &HttpRequest, spur: &State, owned_only: bool) -> Result<HttpResponse, ApiError> {
    let query = super::Query::of(req);
    let get = |k: &str| query.get(k);
    let invalid = |k: &str| ApiError::Params(format!("{k} does not have a valid value"));
    let kind = get("type");
    if kind
        .as_deref()
        .is_some_and(|t| !matches!(t, "instance_type" | "group_type" | "project_type"))
    {
        return Err(invalid("type"));
    }
    let paused = get("paused")
        .map(|v| crate::http::params::truthy(&v).ok_or_else(|| invalid("paused")))
        .transpose()?;
    let status = get("status");
    let tags: Vec<String> = get("tag_list")
        .map(|t| {
            t.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let now = crate::clock::now();
    let all: Vec<Value> = spur
        .store
        .runners()?
        .iter()
        .filter(|_| !owned_only)
        .filter(|_| kind.as_deref().is_none_or(|k| k == "instance_type"))
        .filter(|r| paused.is_none_or(|p| r.paused == p))
        .filter(|r| status.as_deref().is_none_or(|s| crate::runners::status(r, now) == s))
        .filter(|r| tags.iter().all(|t| r.tags.contains(t)))
        .map(views::runner)
        .collect();
    crate::http::pagination::paginated(req, all)
}

fn find(spur: &State, req: &HttpRequest) -> Result<Runner, ApiError> {
    let id = id_segment(req, "runner_id")?;
    spur.store.runner(id)?.ok_or_else(|| ApiError::not_found("Runner"))
}

/// `GET /runners/:id` (administrators).
pub async fn show(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    admin(&req, &spur).await?;
    Ok(json_response(
        StatusCode::OK,
        &views::runner_details(&find(&spur, &req)?),
    ))
}

/// `GET /runners/:id/jobs` (administrators): the jobs the runner took, newest first, with
/// `status`, `order_by=id` and `sort` (`asc`/`desc`).
pub async fn jobs(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    admin(&req, &spur).await?;
    let runner = find(&spur, &req)?;
    let q = super::Query::of(&req);
    let status = match q.get("status") {
        None => None,
        Some(s) => Some(
            crate::domain::JobStatus::parse(&s)
                .ok_or_else(|| ApiError::Params("status does not have a valid value".into()))?,
        ),
    };
    if q.get("order_by").is_some_and(|o| o != "id") {
        return Err(ApiError::Params("order_by does not have a valid value".into()));
    }
    let newest_first = match q.get("sort").as_deref() {
        None | Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(ApiError::Params("sort does not have a valid value".into())),
    };
    let page = crate::http::pagination::PageRequest::from_request(&req)?;
    let s = spur.clone();
    let (jobs, total) = web::block(move || {
        let keep = |j: &crate::domain::Job| status.is_none_or(|st| j.status == st);
        s.store
            .runner_jobs(runner.id, &keep, newest_first, page.offset(), page.per_page)
    })
    .await??;
    let mut items = Vec::with_capacity(jobs.len());
    for job in &jobs {
        let (Some(project), Some(pipeline)) = (
            spur.store.project(job.project_id)?,
            spur.store.pipeline(job.pipeline_id)?,
        ) else {
            continue;
        };
        let user = spur.store.user(job.user_id)?;
        let mut view = views::job(&spur, &project, &pipeline, job, user.as_ref());
        if let Some(obj) = view.as_object_mut() {
            obj.insert("project".into(), views::basic_project(&spur, &project));
        }
        items.push(view);
    }
    Ok(crate::http::pagination::page_response(&req, page, items, total))
}

/// `PUT /runners/:id` (administrators): description, paused/active, tags, run_untagged,
/// access_level, maximum_timeout.
pub async fn update(req: HttpRequest, payload: web::Payload, spur: State) -> Result<HttpResponse, ApiError> {
    admin(&req, &spur).await?;
    let mut runner = find(&spur, &req)?;
    let params = runner_params(&req, payload, &spur).await?;
    let new = settings(&params, runner.created_by_admin)?;
    if params.get("description").is_some() {
        runner.description = new.description;
    }
    if params.get("paused").is_some() || params.get("active").is_some() {
        runner.paused = new.paused;
    }
    if params.get("tag_list").is_some() {
        runner.tags = runners::normalize_tags(new.tags);
    }
    if params.get("run_untagged").is_some() {
        runner.run_untagged = new.run_untagged;
    }
    if let Some(level) = new.access_level {
        runner.access_level = level;
    }
    if new.maximum_timeout.is_some() {
        runner.maximum_timeout = new.maximum_timeout;
    }
    if runner.tags.is_empty() && !runner.run_untagged {
        return Err(ApiError::invalid(
            "tags_list",
            "can not be empty when runner is not allowed to pick untagged jobs",
        ));
    }
    if !crate::runners::update_runner(&spur, runner.clone()).await? {
        return Err(ApiError::not_found("Runner"));
    }
    Ok(json_response(StatusCode::OK, &views::runner_details(&runner)))
}

/// `DELETE /runners/:id` (administrators): 204; its token stops working at once.
pub async fn delete(req: HttpRequest, spur: State) -> Result<HttpResponse, ApiError> {
    admin(&req, &spur).await?;
    let runner = find(&spur, &req)?;
    crate::runners::delete_runner(&spur, runner.id).await?;
    Ok(HttpResponse::NoContent().finish())
}
