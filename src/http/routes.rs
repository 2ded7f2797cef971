//! The route table of the whole server: the `/api/v4` endpoints, health, git over HTTP and
//! the browser UI, in the order actix tries them.

use super::{api, api_not_found, git_http, health, ui};
use actix_web::web;

/// The route table of the whole server.
pub fn routes(cfg: &mut web::ServiceConfig) {
    use api::*;
    cfg.service(
        web::scope("/api/v4")
            // The trigger routes come first: actix tries routes in order, and these are hot.
            .route("/projects/{id}/trigger/pipeline", web::post().to(trigger::by_params))
            .route(
                "/projects/{id}/ref/{ref:.+}/trigger/pipeline",
                web::post().to(trigger::by_webhook),
            )
            // Runners poll this constantly.
            .route("/jobs/request", web::post().to(runner_jobs::request))
            .route("/jobs/{job_id}", web::put().to(runner_jobs::update))
            .route("/jobs/{job_id}/trace", web::patch().to(runner_jobs::patch_trace))
            .route(
                "/jobs/{job_id}/artifacts",
                web::post().to(runner_jobs::upload_artifacts),
            )
            .route(
                "/jobs/{job_id}/artifacts",
                web::get().to(runner_jobs::download_artifacts),
            )
            .route("/runners", web::post().to(runners::register))
            .route("/runners/", web::post().to(runners::register))
            .route("/runners", web::delete().to(runners::unregister))
            .route("/runners/", web::delete().to(runners::unregister))
            .route("/runners/verify", web::post().to(runners::verify))
            .route(
                "/runners/router/discovery",
                web::get().to(runner_jobs::router_discovery),
            )
            .route("/runners/managers", web::delete().to(runners::unregister_manager))
            .route("/runners/all", web::get().to(runners::list))
            .route("/runners", web::get().to(runners::owned))
            .route("/runners/{runner_id}", web::get().to(runners::show))
            .route("/runners/{runner_id}/jobs", web::get().to(runners::jobs))
            .route("/runners/{runner_id}", web::put().to(runners::update))
            .route("/runners/{runner_id}", web::delete().to(runners::delete))
            .route("/user/runners", web::post().to(runners::create))
            .route("/version", web::get().to(version::show))
            .route("/admin/backup", web::post().to(admin::backup))
            .route("/application/settings", web::get().to(application_settings::show))
            .route("/application/settings", web::put().to(application_settings::update))
            .route("/user", web::get().to(users::current))
            .route("/users", web::get().to(users::list))
            .route("/users", web::post().to(users::create))
            .route("/users/{user_id}", web::get().to(users::show))
            .route("/users/{user_id}", web::put().to(users::update))
            .route("/users/{user_id}/block", web::post().to(users::block))
            .route("/users/{user_id}/unblock", web::post().to(users::unblock))
            .route(
                "/users/{user_id}/personal_access_tokens",
                web::post().to(users::create_token),
            )
            .route("/personal_access_tokens", web::get().to(tokens::list))
            .route("/personal_access_tokens/self", web::delete().to(tokens::revoke_self))
            .route("/personal_access_tokens/{token_id}", web::get().to(tokens::show))
            .route(
                "/personal_access_tokens/{token_id}",
                web::delete().to(users::revoke_token),
            )
            .route(
                "/personal_access_tokens/{token_id}/rotate",
                web::post().to(tokens::rotate),
            )
            .route("/groups", web::get().to(groups::list))
            .route("/groups", web::post().to(groups::create))
            .route("/groups/{group_id}", web::get().to(groups::show))
            .route("/groups/{group_id}/projects", web::get().to(groups::projects))
            .route("/groups/{group_id}/variables", web::get().to(variables::list))
            .route("/groups/{group_id}/variables", web::post().to(variables::create))
            .route("/groups/{group_id}/variables/{key}", web::get().to(variables::show))
            .route("/groups/{group_id}/variables/{key}", web::put().to(variables::update))
            .route(
                "/groups/{group_id}/variables/{key}",
                web::delete().to(variables::delete),
            )
            .route("/groups/{group_id}/members", web::get().to(group_members::list))
            .route("/groups/{group_id}/members", web::post().to(group_members::create))
            .route(
                "/groups/{group_id}/members/{user_id}",
                web::get().to(group_members::show),
            )
            .route(
                "/groups/{group_id}/members/{user_id}",
                web::put().to(group_members::update),
            )
            .route(
                "/groups/{group_id}/members/{user_id}",
                web::delete().to(group_members::delete),
            )
            .route("/namespaces", web::get().to(groups::namespaces))
            .route("/metadata", web::get().to(version::show))
            .route("/projects", web::get().to(projects::list))
            .route("/projects", web::post().to(projects::create))
            .route("/projects/{id}", web::get().to(projects::show))
            .route("/projects/{id}", web::put().to(projects::update))
            .route("/projects/{id}", web::delete().to(projects::delete))
            .route("/projects/{id}/members", web::get().to(members::list))
            .route("/projects/{id}/members", web::post().to(members::create))
            .route("/projects/{id}/members/all", web::get().to(members::all))
            .route("/projects/{id}/users", web::get().to(members::users))
            .route("/projects/{id}/members/{user_id}", web::get().to(members::show))
            .route("/projects/{id}/members/{user_id}", web::put().to(members::update))
            .route("/projects/{id}/members/{user_id}", web::delete().to(members::delete))
            .route("/projects/{id}/triggers", web::get().to(triggers::list))
            .route("/projects/{id}/triggers", web::post().to(triggers::create))
            .route("/projects/{id}/triggers/{trigger_id}", web::get().to(triggers::show))
            .route("/projects/{id}/triggers/{trigger_id}", web::put().to(triggers::update))
            .route(
                "/projects/{id}/triggers/{trigger_id}/rotate",
                web::post().to(triggers::rotate),
            )
            .route(
                "/projects/{id}/triggers/{trigger_id}",
                web::delete().to(triggers::delete),
            )
            .route("/projects/{id}/ci/lint", web::post().to(lint::lint))
            .route("/projects/{id}/ci/lint", web::get().to(lint::lint))
            .route("/projects/{id}/releases", web::get().to(releases::list))
            .route("/projects/{id}/releases", web::post().to(releases::create))
            .route("/projects/{id}/releases/{tag_name}", web::get().to(releases::show))
            .route("/projects/{id}/releases/{tag_name}", web::put().to(releases::update))
            .route("/projects/{id}/releases/{tag_name}", web::delete().to(releases::delete))
            .route(
                "/projects/{id}/releases/{tag_name}/assets/links",
                web::get().to(releases::links),
            )
            .route(
                "/projects/{id}/releases/{tag_name}/assets/links",
                web::post().to(releases::create_link),
            )
            .route(
                "/projects/{id}/releases/{tag_name}/assets/links/{link_id}",
                web::get().to(releases::link),
            )
            .route(
                "/projects/{id}/releases/{tag_name}/assets/links/{link_id}",
                web::put().to(releases::update_link),
            )
            .route(
                "/projects/{id}/releases/{tag_name}/assets/links/{link_id}",
                web::delete().to(releases::delete_link),
            )
            .route("/projects/{id}/badges", web::get().to(badges::list))
            .route("/projects/{id}/badges", web::post().to(badges::create))
            .route("/projects/{id}/badges/render", web::get().to(badges::render))
            .route("/projects/{id}/badges/{badge_id}", web::get().to(badges::show))
            .route("/projects/{id}/badges/{badge_id}", web::put().to(badges::update))
            .route("/projects/{id}/badges/{badge_id}", web::delete().to(badges::delete))
            .route("/projects/{id}/hooks", web::get().to(hooks::list))
            .route("/projects/{id}/hooks", web::post().to(hooks::create))
            .route("/projects/{id}/hooks/{hook_id}", web::get().to(hooks::show))
            .route("/projects/{id}/hooks/{hook_id}", web::put().to(hooks::update))
            .route("/projects/{id}/hooks/{hook_id}", web::delete().to(hooks::delete))
            .route(
                "/projects/{id}/hooks/{hook_id}/test/{trigger}",
                web::post().to(hooks::test),
            )
            .route("/projects/{id}/hooks/{hook_id}/events", web::get().to(hooks::events))
            .route(
                "/projects/{id}/hooks/{hook_id}/events/{hook_log_id}/resend",
                web::post().to(hooks::resend),
            )
            .route(
                "/projects/{id}/integrations/github",
                web::get().to(hooks::show_integration),
            )
            .route(
                "/projects/{id}/integrations/github",
                web::put().to(hooks::set_integration),
            )
            .route(
                "/projects/{id}/integrations/github",
                web::delete().to(hooks::delete_integration),
            )
            .route("/projects/{id}/mirror/pull", web::post().to(mirror::pull))
            .route("/projects/{id}/mirror/hook", web::post().to(mirror::hook))
            .route("/projects/{id}/protected_branches", web::get().to(protected_refs::list))
            .route(
                "/projects/{id}/protected_branches",
                web::post().to(protected_refs::create),
            )
            .route(
                "/projects/{id}/protected_branches/{name}",
                web::get().to(protected_refs::show),
            )
            .route(
                "/projects/{id}/protected_branches/{name}",
                web::delete().to(protected_refs::delete),
            )
            .route(
                "/projects/{id}/protected_branches/{name}",
                web::patch().to(protected_refs::update),
            )
            .route("/projects/{id}/protected_tags", web::get().to(protected_refs::list))
            .route("/projects/{id}/protected_tags", web::post().to(protected_refs::create))
            .route(
                "/projects/{id}/protected_tags/{name}",
                web::get().to(protected_refs::show),
            )
            .route(
                "/projects/{id}/protected_tags/{name}",
                web::delete().to(protected_refs::delete),
            )
            .route("/projects/{id}/variables", web::get().to(variables::list))
            .route("/projects/{id}/variables", web::post().to(variables::create))
            .route("/projects/{id}/variables/{key}", web::get().to(variables::show))
            .route("/projects/{id}/variables/{key}", web::put().to(variables::update))
            .route("/projects/{id}/variables/{key}", web::delete().to(variables::delete))
            .route(
                "/projects/{id}/pipeline",
                web::post().to(create_pipeline::create_api_pipeline),
            )
            .route("/projects/{id}/pipelines", web::get().to(pipelines::list))
            .route("/projects/{id}/pipelines/latest", web::get().to(pipelines::latest))
            .route(
                "/projects/{id}/repository/branches",
                web::get().to(repository::branches),
            )
            .route(
                "/projects/{id}/repository/branches/{name}",
                web::get().to(repository::branch),
            )
            .route(
                "/projects/{id}/repository/branches",
                web::post().to(repository::create_branch),
            )
            .route(
                "/projects/{id}/repository/branches/{name}",
                web::delete().to(repository::delete_branch),
            )
            .route("/projects/{id}/repository/tags", web::get().to(repository::tags))
            .route("/projects/{id}/repository/tags", web::post().to(repository::create_tag))
            .route("/projects/{id}/repository/tags/{name}", web::get().to(repository::tag))
            .route(
                "/projects/{id}/repository/tags/{name}",
                web::delete().to(repository::delete_tag),
            )
            .route(
                "/projects/{id}/repository/files/{file_path}",
                web::get().to(repository::file),
            )
            .route(
                "/projects/{id}/repository/files/{file_path}/raw",
                web::get().to(repository::raw_file),
            )
            .route("/projects/{id}/repository/tree", web::get().to(repository::tree))
            .route("/projects/{id}/repository/commits", web::get().to(repository::commits))
            .route(
                "/projects/{id}/repository/commits/{sha}",
                web::get().to(repository::commit),
            )
            .route(
                "/projects/{id}/repository/commits/{sha}/statuses",
                web::get().to(commit_statuses::list),
            )
            .route("/projects/{id}/statuses/{sha}", web::post().to(commit_statuses::create))
            .route(
                "/projects/{id}/repository/commits/{sha}/refs",
                web::get().to(compare::commit_refs),
            )
            .route("/projects/{id}/repository/compare", web::get().to(compare::compare))
            .route("/projects/{id}/repository/archive", web::get().to(compare::archive))
            .route(
                "/projects/{id}/repository/archive.{format}",
                web::get().to(compare::archive),
            )
            .route("/projects/{id}/pipelines/{pipeline_id}", web::get().to(pipelines::show))
            .route(
                "/projects/{id}/pipelines/{pipeline_id}",
                web::delete().to(pipelines::delete),
            )
            .route(
                "/projects/{id}/pipelines/{pipeline_id}/variables",
                web::get().to(pipelines::variables),
            )
            .route("/projects/{id}/environments", web::get().to(environments::list))
            .route("/projects/{id}/environments", web::post().to(environments::create))
            .route(
                "/projects/{id}/environments/stop_stale",
                web::post().to(environments::stop_stale),
            )
            .route(
                "/projects/{id}/environments/{environment_id}",
                web::get().to(environments::show),
            )
            .route(
                "/projects/{id}/environments/{environment_id}",
                web::put().to(environments::update),
            )
            .route(
                "/projects/{id}/environments/{environment_id}",
                web::delete().to(environments::delete),
            )
            .route(
                "/projects/{id}/environments/{environment_id}/stop",
                web::post().to(environments::stop),
            )
            .route("/projects/{id}/deployments", web::get().to(environments::deployments))
            .route(
                "/projects/{id}/deployments/{deployment_id}",
                web::get().to(environments::deployment),
            )
            .route(
                "/projects/{id}/pipeline_schedules",
                web::get().to(pipeline_schedules::list),
            )
            .route(
                "/projects/{id}/pipeline_schedules",
                web::post().to(pipeline_schedules::create),
            )
            .route(
                "/projects/{id}/pipeline_schedules/{pipeline_schedule_id}",
                web::get().to(pipeline_schedules::show),
            )
            .route(
                "/projects/{id}/pipeline_schedules/{pipeline_schedule_id}",
                web::put().to(pipeline_schedules::update),
            )
            .route(
                "/projects/{id}/pipeline_schedules/{pipeline_schedule_id}",
                web::delete().to(pipeline_schedules::delete),
            )
            .route(
                "/projects/{id}/pipeline_schedules/{pipeline_schedule_id}/pipelines",
                web::get().to(pipeline_schedules::pipelines),
            )
            .route(
                "/projects/{id}/pipeline_schedules/{pipeline_schedule_id}/take_ownership",
                web::post().to(pipeline_schedules::take_ownership),
            )
            .route(
                "/projects/{id}/pipeline_schedules/{pipeline_schedule_id}/play",
                web::post().to(pipeline_schedules::play),
            )
            .route(
                "/projects/{id}/pipeline_schedules/{pipeline_schedule_id}/variables",
                web::post().to(pipeline_schedules::create_variable),
            )
            .route(
                "/projects/{id}/pipeline_schedules/{pipeline_schedule_id}/variables/{key}",
                web::put().to(pipeline_schedules::update_variable),
            )
            .route(
                "/projects/{id}/pipeline_schedules/{pipeline_schedule_id}/variables/{key}",
                web::delete().to(pipeline_schedules::delete_variable),
            )
            .route(
                "/projects/{id}/pipelines/{pipeline_id}/test_report",
                web::get().to(test_reports::report),
            )
            .route(
                "/projects/{id}/pipelines/{pipeline_id}/test_report_summary",
                web::get().to(test_reports::summary),
            )
            .route(
                "/projects/{id}/pipelines/{pipeline_id}/jobs",
                web::get().to(jobs::for_pipeline),
            )
            .route(
                "/projects/{id}/pipelines/{pipeline_id}/bridges",
                web::get().to(jobs::bridges),
            )
            .route("/projects/{id}/jobs", web::get().to(jobs::list))
            .route("/projects/{id}/jobs/{job_id}", web::get().to(jobs::show))
            .route("/projects/{id}/jobs/{job_id}/trace", web::get().to(jobs::trace))
            .route("/projects/{id}/jobs/{job_id}/artifacts", web::get().to(jobs::artifacts))
            .route(
                "/projects/{id}/jobs/artifacts/{ref_name}/download",
                web::get().to(artifacts::download_for_ref),
            )
            .route(
                "/projects/{id}/jobs/artifacts/{ref_name}/raw/{path:.*}",
                web::get().to(artifacts::raw_for_ref),
            )
            .route(
                "/projects/{id}/jobs/{job_id}/artifacts/{path:.*}",
                web::get().to(artifacts::file),
            )
            .route("/projects/{id}/jobs/{job_id}/cancel", web::post().to(jobs::cancel))
            .route("/projects/{id}/jobs/{job_id}/retry", web::post().to(jobs::retry))
            .route("/projects/{id}/jobs/{job_id}/play", web::post().to(jobs::play))
            .route("/projects/{id}/jobs/{job_id}/erase", web::post().to(jobs::erase))
            .route(
                "/projects/{id}/pipelines/{pipeline_id}/cancel",
                web::post().to(pipelines::cancel),
            )
            .route(
                "/projects/{id}/pipelines/{pipeline_id}/retry",
                web::post().to(pipelines::retry),
            )
            .route("/job", web::get().to(jobs::current))
            .route("/projects/{id}/job_token_scope", web::get().to(job_token_scope::show))
            .route(
                "/projects/{id}/job_token_scope",
                web::patch().to(job_token_scope::update),
            )
            .route(
                "/projects/{id}/job_token_scope/allowlist",
                web::get().to(job_token_scope::list),
            )
            .route(
                "/projects/{id}/job_token_scope/allowlist",
                web::post().to(job_token_scope::add),
            )
            .route(
                "/projects/{id}/job_token_scope/allowlist/{target_project_id}",
                web::delete().to(job_token_scope::remove),
            )
            .default_service(web::to(api_not_found)),
    );
    cfg.route("/-/health", web::get().to(health::health))
        .route("/-/liveness", web::get().to(health::liveness))
        .route("/-/readiness", web::get().to(health::readiness))
        .route("/-/metrics", web::get().to(health::metrics));
    cfg.route("/{ns}/{repo:[^/]+\\.git}/info/refs", web::get().to(git_http::info_refs))
        .route(
            "/{ns}/{repo:[^/]+\\.git}/git-upload-pack",
            web::post().to(git_http::upload_pack),
        )
        .route(
            "/{ns}/{repo:[^/]+\\.git}/git-receive-pack",
            web::post().to(git_http::receive_pack),
        );
    ui::routes(cfg);
}
