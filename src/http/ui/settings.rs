//! Settings > CI/CD (Maintainer+): pipeline trigger tokens (add, reveal, copy, edit, revoke,
//! with the curl examples for this project), project variables (add, edit, delete, values
//! hidden until revealed) and the minimum role for pipeline variables.

use super::{Form, Layout, ProjectPost, UiError, ago, html, id_in_path, project_page, project_post, redirect};
use crate::clock;
use crate::context::Spur;
use crate::domain::{AccessLevel, Project, ProjectVariable, VariableType, VariablesOverrideRole};
use crate::storage::ProjectChange;
use crate::trigger_tokens;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

/// A trigger token row as the viewer may see it.
struct TriggerRow {
    id: u64,
    /// The full token, only for its owner while Maintainer+ (GitLab's `admin_trigger`).
    full: Option<String>,
    short_token: String,
    description: String,
    owner: String,
    last_used: String,
    expires: String,
    valid: bool,
    /// The refs it may run, comma-separated (empty: any).
    refs: String,
    /// The keys it may send, comma-separated (`None`: any).
    keys: Option<String>,
}

/// A comma-separated list from a form field.
fn list_field(form: &Form, name: &str) -> Vec<String> {
    form.get(name)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The limits a trigger form sets: ref patterns (none listed: any ref) and allowed keys (`*`,
/// or no field at all: any; an empty field: none), as the API reads them.
fn scope_from(form: &Form) -> trigger_tokens::Scope {
    let keys = match form.get("trigger[allowed_variables]").map(str::trim) {
        None | Some("*") => None,
        Some(_) => Some(list_field(form, "trigger[allowed_variables]")),
    };
    trigger_tokens::Scope {
        ref_patterns: list_field(form, "trigger[ref_patterns]"),
        allowed_variables: keys,
    }
}

struct VariableRow {
    key: String,
    value: String,
    description: String,
    file: bool,
    protected: bool,
    masked: bool,
}

#[derive(Template)]
#[template(path = "settings_ci_cd.html")]
struct SettingsPage {
    l: Layout,
    full_path: String,
    project_id: u64,
    api_url: String,
    stars: &'static str,
    triggers: Vec<TriggerRow>,
    variables: Vec<VariableRow>,
    roles: Vec<RoleOption>,
    allowlist: Vec<AllowedProject>,
    protected: Vec<ProtectedRow>,
    clone_url: String,
    mirror: Option<MirrorBlock>,
    /// The Add variable form (kept as sent when it was refused).
    new_variable: NewVariable,
    /// The trigger token just created by the visitor (`?created=<id>`), shown at the top.
    created: Option<CreatedToken>,
}

/// A new trigger token, shown to its owner at the top of the page after creating it.
struct CreatedToken {
    token: String,
    description: String,
}

/// A protected branch or tag rule.
struct ProtectedRow {
    kind: &'static str,
    name: String,
    who: String,
}

/// How a forge tells spur that the mirrored repository changed.
struct MirrorBlock {
    hook_url: String,
    secret: String,
    deploy_key: Option<String>,
}

/// A project on the job token allowlist.
struct AllowedProject {
    id: u64,
    path: String,
}

/// One choice of the minimum role for pipeline variables.
struct RoleOption {
    value: &'static str,
    text: &'static str,
    selected: bool,
}

/// GitLab masks a token as 47 asterisks until it is revealed.
const STARS: &str = "***********************************************";

/// The Add variable form as it was sent, when it was refused.
#[derive(Default)]
struct NewVariable {
    key: String,
    value: String,
    description: String,
    protected: bool,
    masked: bool,
    file: bool,
    error: Option<String>,
}

/// `GET /{ns}/{project}/-/variables`: where a refused Add variable form was shown; its section.
pub async fn to_settings(req: HttpRequest) -> HttpResponse {
    let path = format!(
        "/{}/{}/-/settings/ci_cd#js-cicd-variables-settings",
        req.match_info().get("ns").unwrap_or_default(),
        req.match_info().get("project").unwrap_or_default()
    );
    redirect(&req, &path, None)
}

/// `GET /{ns}/{project}/-/settings/ci_cd`.
pub async fn show(req: HttpRequest, spur: web::Data<Spur>) -> Result<HttpResponse, UiError> {
    render(&req, &spur, NewVariable::default()).await
}

/// The settings page, with the Add variable form filled in as `new_variable` says.
async fn render(req: &HttpRequest, spur: &web::Data<Spur>, new_variable: NewVariable) -> Result<HttpResponse, UiError> {
    let (visitor, project, access) = project_page(req, spur, Some(AccessLevel::Maintainer)).await?;
    let viewer = visitor.signed_in()?;
    let now = clock::now();
    let mut triggers = Vec::new();
    for (t, last_used) in spur.store.project_triggers(project.id)? {
        if t.is_expired(now) {
            continue;
        }
        let owner = spur
            .store
            .user(t.owner_id)?
            .map_or_else(|| "unknown".into(), |u| u.username);
        triggers.push(TriggerRow {
            id: t.id,
            full: trigger_tokens::full_token(spur, &t, viewer, &access).map_err(UiError::Internal)?,
            short_token: t.short_token.clone(),
            description: t.description.clone().unwrap_or_default(),
            owner,
            last_used: match (last_used, spur.store.trigger_last_address(t.id)?) {
                (None, _) => "Never".into(),
                (Some(at), None) => ago(at, now),
                (Some(at), Some(address)) => format!("{} from {address}", ago(at, now)),
            },
            refs: t.ref_patterns.join(", "),
            keys: t.allowed_variables.as_ref().map(|k| k.join(", ")),
            expires: t.expires_at.map_or_else(|| "Never".into(), clock::date),
            valid: trigger_tokens::owner_can_run(spur, &t, &project),
        });
    }
    let variables = crate::project_variables::list(spur, project.id)
        .map_err(UiError::Internal)?
        .into_iter()
        .map(|v| VariableRow {
            key: v.key,
            value: v.value,
            description: v.description.unwrap_or_default(),
            file: v.variable_type == VariableType::File,
            protected: v.protected,
            masked: v.masked,
        })
        .collect();
    let mut allowlist = Vec::new();
    for id in spur.store.job_token_allowlist(project.id)? {
        if let Some(p) = spur.store.project(id)? {
            allowlist.push(AllowedProject { id, path: p.full_path });
        }
    }
    let protected = spur
        .store
        .protected_refs(project.id)?
        .into_iter()
        .map(|r| ProtectedRow {
            kind: r.kind.as_str(),
            who: match r.kind {
                crate::domain::RefKind::Branch => format!(
                    "push: {}, merge: {}",
                    crate::protected_refs::level_description(r.push_access_level),
                    crate::protected_refs::level_description(r.merge_access_level)
                ),
                crate::domain::RefKind::Tag => format!(
                    "create: {}",
                    crate::protected_refs::level_description(r.create_access_level)
                ),
            },
            name: r.name,
        })
        .collect();
    let mirror = project.import_url.as_ref().map(|_| MirrorBlock {
        hook_url: spur.url(&format!("api/v4/projects/{}/mirror/hook", project.id)),
        secret: crate::push::hook_secret(spur, project.id),
        deploy_key: project.deploy_key.as_ref().map(|k| k.public.clone()),
    });
    // Only the token's owner sees it, as in the list (`full` is theirs alone).
    let created = super::query(req, "created")
        .and_then(|id| id.parse::<u64>().ok())
        .and_then(|id| triggers.iter().find(|t| t.id == id))
        .and_then(|t| {
            t.full.clone().map(|token| CreatedToken {
                token,
                description: t.description.clone(),
            })
        });
    let l = Layout::new(req, &visitor, "CI/CD Settings").in_project(&project, &access, "settings");
    html(
        req,
        &SettingsPage {
            l,
            full_path: project.full_path.clone(),
            project_id: project.id,
            api_url: spur.url("api/v4"),
            stars: STARS,
            triggers,
            variables,
            roles: [
                ("no_one_allowed", "No one allowed"),
                ("owner", "Owner"),
                ("maintainer", "Maintainer"),
                ("developer", "Developer"),
            ]
            .into_iter()
            .map(|(value, text)| RoleOption {
                value,
                text,
                selected: value == project.variables_override_role.as_str(),
            })
            .collect(),
            allowlist,
            protected,
            clone_url: spur.url(&format!("{}.git", project.full_path)),
            mirror,
            created,
            new_variable,
        },
    )
}

fn settings_url(project: &Project, anchor: &str) -> String {
    format!("/{}/-/settings/ci_cd#{anchor}", project.full_path)
}

/// `POST /{ns}/{project}/-/triggers`: "Add new token".
pub async fn create_trigger(
    req: HttpRequest,
    spur: web::Data<Spur>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let ProjectPost {
        form,
        user: owner,
        project,
        ..
    } = project_post(&req, &spur, payload, AccessLevel::Maintainer).await?;
    let back = settings_url(&project, "js-pipeline-triggers");
    let description = form.get("trigger[description]").map(str::to_string);
    let expires_at = match form.get("trigger[expires_at]").filter(|d| !d.is_empty()) {
        None => None,
        Some(date) => match clock::parse_datetime(date) {
            Some(t) => Some(t),
            None => return Ok(redirect(&req, &back, Some(("alert", "Expiration date is invalid.")))),
        },
    };
    match trigger_tokens::create(&spur, &project, &owner, description, expires_at, scope_from(&form)).await {
        Ok((trigger, _)) => Ok(redirect(
            &req,
            &format!(
                "/{}/-/settings/ci_cd?created={}#created-trigger",
                project.full_path, trigger.id
            ),
            Some(("notice", "Trigger token was created successfully.")),
        )),
        Err(trigger_tokens::CreateError::ExpiresTooLate(text)) => {
            Ok(redirect(&req, &back, Some(("alert", &format!("Expires at {text}")))))
        }
        Err(trigger_tokens::CreateError::InvalidScope(field, text)) => {
            let field = if field == "ref_patterns" {
                "Allowed refs"
            } else {
                "Allowed variables"
            };
            Ok(redirect(&req, &back, Some(("alert", &format!("{field}: {text}")))))
        }
        Err(trigger_tokens::CreateError::Internal(e)) => Err(UiError::Internal(e)),
    }
}

/// `POST /{ns}/{project}/-/triggers/{id}`: edit the description (its owner, Maintainer+), or
/// revoke with `_method=delete` (any Maintainer).
pub async fn change_trigger(
    req: HttpRequest,
    spur: web::Data<Spur>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let ProjectPost {
        form,
        user: viewer,
        project,
        access,
    } = project_post(&req, &spur, payload, AccessLevel::Maintainer).await?;
    let back = settings_url(&project, "js-pipeline-triggers");
    let id = id_in_path(&req, "id")?;
    let (trigger, _) = spur
        .store
        .trigger(id)?
        .filter(|(t, _)| t.project_id == project.id)
        .ok_or(UiError::NotFound)?;
    if form.get("_method") == Some("delete") {
        crate::trigger_tokens::delete_trigger(&spur, trigger.id, None)
            .await?
            .map_err(|_| UiError::NotFound)?;
        tracing::info!(
            project_id = project.id,
            trigger_id = trigger.id,
            "trigger token revoked"
        );
        return Ok(redirect(&req, &back, Some(("notice", "Trigger token removed."))));
    }
    if !trigger_tokens::may_see_full(&trigger, &viewer, &access) {
        return Err(UiError::NotFound);
    }
    if form.get("_method") == Some("rotate") {
        trigger_tokens::rotate(&spur, &trigger, 0)
            .await
            .map_err(|e| UiError::Internal(format!("{e:?}")))?
            .ok_or(UiError::NotFound)?;
        let notice = "Trigger token was rotated: the old token no longer works. Reveal the new one below.";
        return Ok(redirect(&req, &back, Some(("notice", notice))));
    }
    let scope = scope_from(&form);
    match trigger_tokens::update_trigger_scope(&spur, &trigger, Some(scope.ref_patterns), Some(scope.allowed_variables))
        .await
    {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return Err(UiError::NotFound),
        Err(trigger_tokens::CreateError::InvalidScope(_, text)) => {
            return Ok(redirect(&req, &back, Some(("alert", &text))));
        }
        Err(e) => return Err(UiError::Internal(format!("{e:?}"))),
    }
    let description = form.get("trigger[description]").map(str::to_string);
    crate::trigger_tokens::update_trigger_description(&spur, trigger.id, description, clock::now())
        .await?
        .map_err(|_| UiError::NotFound)?;
    Ok(redirect(&req, &back, Some(("notice", "Trigger token was updated."))))
}

/// `POST /{ns}/{project}/-/variables`: add a variable.
pub async fn create_variable(
    req: HttpRequest,
    spur: web::Data<Spur>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let ProjectPost { form, project, .. } = project_post(&req, &spur, payload, AccessLevel::Maintainer).await?;
    let variable = variable_from(&form, form.get("variable[key]").unwrap_or_default().trim().to_string());
    save_variable(&req, &spur, &project, variable, true).await
}

/// `POST /{ns}/{project}/-/variables/{key}`: update, or delete with `_method=delete`.
pub async fn change_variable(
    req: HttpRequest,
    spur: web::Data<Spur>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let ProjectPost { form, project, .. } = project_post(&req, &spur, payload, AccessLevel::Maintainer).await?;
    let key = req.match_info().get("key").unwrap_or_default().to_string();
    if form.get("_method") == Some("delete") {
        crate::project_variables::delete_project_variable(&spur, project.id, key)
            .await?
            .map_err(|_| UiError::NotFound)?;
        let back = settings_url(&project, "js-cicd-variables-settings");
        return Ok(redirect(&req, &back, Some(("notice", "Variable was deleted."))));
    }
    let existing = crate::project_variables::get(&spur, project.id, &key)
        .map_err(UiError::Internal)?
        .ok_or(UiError::NotFound)?;
    let mut variable = variable_from(&form, key);
    variable.raw = existing.raw;
    save_variable(&req, &spur, &project, variable, false).await
}

fn variable_from(form: &Form, key: String) -> ProjectVariable {
    ProjectVariable {
        key,
        value: form.get("variable[value]").unwrap_or_default().to_string(),
        variable_type: if form.checked("variable[file]") {
            VariableType::File
        } else {
            VariableType::EnvVar
        },
        protected: form.checked("variable[protected]"),
        masked: form.checked("variable[masked]"),
        raw: false,
        description: form
            .get("variable[description]")
            .map(|d| d.trim().to_string())
            .filter(|d| !d.is_empty()),
    }
}

async fn save_variable(
    req: &HttpRequest,
    spur: &web::Data<Spur>,
    project: &Project,
    variable: ProjectVariable,
    create_only: bool,
) -> Result<HttpResponse, UiError> {
    let back = settings_url(project, "js-cicd-variables-settings");
    let refusal = match crate::project_variables::validate(&variable) {
        Err((attr, text)) => format!("Variable {}: {attr} {text}", variable.key),
        Ok(()) => match crate::project_variables::store(spur, project.id, &variable, create_only)
            .await
            .map_err(UiError::Internal)?
        {
            Ok(()) => return Ok(redirect(req, &back, Some(("notice", "Variable was saved.")))),
            Err(_) => format!("Variable {}: key has already been taken", variable.key),
        },
    };
    if !create_only {
        return Ok(redirect(req, &back, Some(("alert", &refusal))));
    }
    // A refused new variable comes back in its form, as sent (the value is the sender's own).
    let kept = NewVariable {
        file: variable.variable_type == VariableType::File,
        key: variable.key,
        value: variable.value,
        description: variable.description.unwrap_or_default(),
        protected: variable.protected,
        masked: variable.masked,
        error: Some(refusal),
    };
    let mut page = render(req, spur, kept).await?;
    *page.status_mut() = actix_web::http::StatusCode::UNPROCESSABLE_ENTITY;
    Ok(page)
}

/// `POST /{ns}/{project}/-/settings/ci_cd/pipeline_variables`: the minimum role.
pub async fn pipeline_variables(
    req: HttpRequest,
    spur: web::Data<Spur>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let ProjectPost { form, project, .. } = project_post(&req, &spur, payload, AccessLevel::Maintainer).await?;
    let role = form
        .get("minimum_role")
        .and_then(VariablesOverrideRole::parse)
        .ok_or_else(|| UiError::BadRequest("Unknown role.".into()))?;
    let change = ProjectChange {
        variables_override_role: Some(role),
        ..ProjectChange::default()
    };
    crate::projects::update_project(&spur, project.id, change, clock::now())
        .await?
        .map_err(|_| UiError::NotFound)?;
    let back = settings_url(&project, "js-pipeline-variables");
    Ok(redirect(
        &req,
        &back,
        Some(("notice", "Pipeline settings were updated.")),
    ))
}

/// `POST /{ns}/{project}/-/settings/ci_cd/job_token_scope`: allow another project's jobs.
pub async fn allow_project(
    req: HttpRequest,
    spur: web::Data<Spur>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let ProjectPost {
        form, user, project, ..
    } = project_post(&req, &spur, payload, AccessLevel::Maintainer).await?;
    let back = settings_url(&project, "js-job-token-scope");
    let path = form
        .get("project_path")
        .unwrap_or_default()
        .trim()
        .trim_matches('/')
        .to_string();
    let other = spur.store.project_by_path(&path)?;
    let visible = match &other {
        Some(p) => crate::auth::project_access(&spur.store, Some(&user), p, clock::now())?.can_read,
        None => false,
    };
    let Some(other) = other.filter(|_| visible) else {
        return Ok(redirect(&req, &back, Some(("alert", "Project not found."))));
    };
    let flash = match crate::projects::allow_job_token(&spur, project.id, other.id).await? {
        Ok(()) => ("notice", "Project was added to the allowlist."),
        Err(_) => ("alert", "That project is already allowed."),
    };
    Ok(redirect(&req, &back, Some(flash)))
}

/// `POST /{ns}/{project}/-/settings/ci_cd/protected_refs`: protect a branch or tag.
pub async fn protect_ref(
    req: HttpRequest,
    spur: web::Data<Spur>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let ProjectPost { project, form, .. } = project_post(&req, &spur, payload, AccessLevel::Maintainer).await?;
    let back = settings_url(&project, "js-protected-refs");
    let name = form.get("protected[name]").unwrap_or_default().trim().to_string();
    let kind = form
        .get("protected[kind]")
        .and_then(crate::domain::RefKind::parse)
        .unwrap_or(crate::domain::RefKind::Branch);
    let level = |key: &str| {
        form.get(key)
            .and_then(|v| v.parse::<u8>().ok())
            .filter(|l| crate::protected_refs::LEVELS.contains(l))
            .unwrap_or(40)
    };
    if name.is_empty() {
        return Ok(redirect(&req, &back, Some(("alert", "Name can't be blank"))));
    }
    let rule = crate::domain::ProtectedRef {
        id: 0,
        project_id: project.id,
        kind,
        name,
        push_access_level: level("protected[push_access_level]"),
        merge_access_level: level("protected[merge_access_level]"),
        create_access_level: level("protected[push_access_level]"),
        allow_force_push: false,
    };
    let flash = match crate::protected_refs::create_protected_ref(&spur, rule).await? {
        Some(_) => ("notice", "Protected."),
        None => ("alert", "That name is already protected."),
    };
    Ok(redirect(&req, &back, Some(flash)))
}

/// `POST /{ns}/{project}/-/settings/ci_cd/protected_refs/{kind}/{name}`: unprotect.
pub async fn unprotect_ref(
    req: HttpRequest,
    spur: web::Data<Spur>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let ProjectPost { project, .. } = project_post(&req, &spur, payload, AccessLevel::Maintainer).await?;
    let Some(kind) = req.match_info().get("kind").and_then(crate::domain::RefKind::parse) else {
        return Err(UiError::NotFound);
    };
    let name = crate::http::percent_decode(req.match_info().get("name").unwrap_or_default());
    if !crate::protected_refs::delete_protected_ref(&spur, project.id, kind, name).await? {
        return Err(UiError::NotFound);
    }
    let back = settings_url(&project, "js-protected-refs");
    Ok(redirect(&req, &back, Some(("notice", "Unprotected."))))
}

/// `POST /{ns}/{project}/-/settings/ci_cd/job_token_scope/{id}`: remove a project.
pub async fn disallow_project(
    req: HttpRequest,
    spur: web::Data<Spur>,
    payload: web::Payload,
) -> Result<HttpResponse, UiError> {
    let ProjectPost { project, .. } = project_post(&req, &spur, payload, AccessLevel::Maintainer).await?;
    let id = id_in_path(&req, "id")?;
    crate::projects::disallow_job_token(&spur, project.id, id)
        .await?
        .map_err(|_| UiError::NotFound)?;
    let back = settings_url(&project, "js-job-token-scope");
    Ok(redirect(
        &req,
        &back,
        Some(("notice", "Project was removed from the allowlist.")),
    ))
}
