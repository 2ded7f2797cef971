//! `POST /projects/:id/ci/lint` (Developer+): validates `content` (or the project's
//! `.gitlab-ci.yml` at `ref`) with the real planner and says which jobs a pipeline from `source`
//! with `variables` would have: GitLab's `valid`/`errors`/`warnings`/`jobs`, plus spur's `stages`.

use crate::ci_config::plan::{Context, plan};
use crate::domain::AccessLevel;
use crate::git::Origin;
use crate::http::error::ApiError;
use crate::http::params::{Params, Validation};
use crate::http::{State, json_response, project_with_role};
use crate::pipeline_create::RepoSource;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

/// Lints and explains.
pub async fn lint(req: HttpRequest, spur: State, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let params = Params::read(&req, payload, spur.max_body_bytes).await?;
    let (actor, project, _) = project_with_role(&req, &spur, Some(AccessLevel::Developer)).await?;
    let mut v = Validation::default();
    let content = v.optional_string(&params, "content");
    let ref_name = v
        .optional_string(&params, "ref")
        .or_else(|| project.default_branch.clone())
        .unwrap_or_else(|| "main".into());
    let source = v.optional_string(&params, "source").unwrap_or_else(|| "push".into());
    let _dry_run = v.optional_bool(&params, "dry_run");
    if params.get("variables").is_some_and(|x| !x.is_object()) {
        v.fail("variables", "is invalid");
    }
    v.finish()?;
    let variables: Vec<(String, String)> = match params.get("variables") {
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
            .collect(),
        _ => Vec::new(),
    };
    let origin = Origin::of(&project);
    crate::mirror::fetch_origin(&spur, &project).await.ok();
    let s = spur.clone();
    let report = web::block(move || -> Result<Value, ApiError> {
        let path = s.repos.path_of(&project.repo_name, &origin);
        let resolved = s
            .repos
            .resolve(&path, &ref_name)
            .map_err(|e| ApiError::invalid("base", e.message()))?;
        let files = s.repos.commit_files(&path, &resolved.sha).map_err(ApiError::internal)?;
        let project_variables = crate::project_variables::for_pipeline(&s, project.id, &resolved.short, resolved.tag)
            .map_err(ApiError::internal)?;
        let ctx = Context {
            source,
            ref_name: resolved.short,
            ref_is_tag: resolved.tag,
            default_branch: project.default_branch.clone().unwrap_or_else(|| "main".into()),
            project_path: project.full_path.clone(),
            project_id: project.id,
            sha: resolved.sha,
            commit_message: files.message.clone(),
            before_sha: "0".repeat(40),
            pipeline_variables: variables,
            project_variables,
            inputs: Default::default(),
            server_url: s.external_url.clone(),
            ..Context::default()
        };
        // `content`, when given, stands in for the project's `.gitlab-ci.yml`.
        let source = RepoSource {
            spur: &s,
            user: Some(&actor.user),
            files: files.clone(),
            main_config: content,
            repository: Some(path.clone()),
            pushed: None,
        };
        let merged = crate::ci_config::plan::merged_yaml(&source).ok();
        Ok(crate::http::views::lint(&plan(&source, files.paths(), &ctx), merged))
    })
    .await??;
    Ok(json_response(StatusCode::OK, &report))
}
