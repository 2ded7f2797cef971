//! Creating a project for a user, whatever asks (the API, the UI's "New project" form): the
//! path from the name, the namespace and the user's right to create in it, the repository
//! (a local path for admins, a remote URL to mirror, or a new hosted one), and the record.
//! Knows nothing of HTTP; refusals are values.

use crate::clock;
use crate::context::Spur;
use crate::domain::{AccessLevel, NamespaceKind, Project, User, Visibility, is_valid_path};
use crate::git::Origin;
use crate::storage::{self, NewProject};

/// What to create.
#[derive(Debug, Clone)]
pub struct ProjectRequest {
    /// Display name (the path is made from it when absent).
    pub name: Option<String>,
    /// URL path (the name is the path when absent).
    pub path: Option<String>,
    /// Namespace id or path; the user's own when absent.
    pub namespace: Option<String>,
    /// Who may see it.
    pub visibility: Visibility,
    /// Free text.
    pub description: String,
    /// A local path or URL to read or mirror; a new hosted repository when absent.
    pub import_url: Option<String>,
}

/// Why no project was created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectRefusal {
    /// An attribute is invalid (the attribute, GitLab's text).
    Invalid(&'static str, String),
    /// The path is taken in the namespace.
    Taken,
    /// No such namespace, or one the user may not see.
    NamespaceNotFound,
    /// The user may not create projects in the namespace.
    Forbidden,
}

/// Creates the project and prepares its repository.
pub async fn create(
    spur: &Spur,
    user: &User,
    request: ProjectRequest,
) -> Result<Result<Project, ProjectRefusal>, storage::Error> {
    let ProjectRequest {
        name,
        path,
        namespace,
        visibility,
        description,
        import_url,
    } = request;
    let path = path.unwrap_or_else(|| slug(name.as_deref().unwrap_or_default()));
    let name = name.unwrap_or_else(|| path.clone());
    if !is_valid_path(&path) {
        return Ok(Err(ProjectRefusal::Invalid(
            "path",
            "can contain only letters, digits, '_', '-' and '.'. Cannot start with '-' or end in '.', '.git' or '.atom'.".into(),
        )));
    }
    let ns = match namespace {
        None => spur.store.namespace(user.namespace_id)?,
        Some(n) => match n.parse::<u64>() {
            Ok(id) => spur.store.namespace(id)?,
            Err(_) => spur.store.namespace_by_path(&n)?,
        },
    };
    let Some(ns) = ns else {
        return Ok(Err(ProjectRefusal::NamespaceNotFound));
    };
    let may_create = user.admin
        || ns.id == user.namespace_id
        || (ns.kind == NamespaceKind::Group
            && crate::auth::live_group_member(&spur.store, ns.id, user.id, crate::clock::now())?
                .is_some_and(|m| m.access_level >= AccessLevel::Maintainer));
    if !may_create {
        if ns.kind == NamespaceKind::Group
            && crate::auth::live_group_member(&spur.store, ns.id, user.id, crate::clock::now())?.is_none()
            && ns.visibility == Visibility::Private
        {
            return Ok(Err(ProjectRefusal::NamespaceNotFound));
        }
        return Ok(Err(ProjectRefusal::Forbidden));
    }
    if ns.kind == NamespaceKind::Group
        && let Some(why) = visibility.refused_in_group(ns.visibility)
    {
        return Ok(Err(ProjectRefusal::Invalid("visibility_level", why)));
    }
    // Credentials in an http(s) import_url are kept apart, sealed, and never shown or logged.
    let (import_url, userinfo) = match import_url {
        Some(url) => {
            let (clean, userinfo) = crate::git::split_credentials(url.trim());
            (Some(clean), userinfo)
        }
        None => (None, None),
    };
    let seal = |plain: &[u8]| {
        spur.secrets
            .seal(plain)
            .map_err(|e| storage::Error::Codec(format!("cannot seal the import credentials: {e}")))
    };
    let import_credentials = userinfo.as_deref().map(|u| seal(u.as_bytes())).transpose()?;
    // An SSH origin gets a deploy key of its own, shown on the settings page to add at the forge.
    let mut deploy_key = None;
    let mut auth = userinfo
        .clone()
        .map_or(crate::git::RemoteAuth::None, crate::git::RemoteAuth::Basic);
    if import_url.as_deref().is_some_and(crate::git::is_ssh_url) {
        let keys = spur.data_dir.join("repositories/.ssh");
        match crate::git::generate_deploy_key(&keys, "spur deploy key").await {
            Ok((public, private)) => {
                deploy_key = Some(crate::domain::DeployKey {
                    public,
                    private_sealed: seal(&private)?,
                });
                auth = crate::git::RemoteAuth::SshKey(private);
            }
            Err(e) => tracing::warn!(error = %e, "could not make a deploy key"),
        }
    }
    let origin = match Origin::classify(import_url.as_deref()) {
        Ok(o) => o,
        Err(e) => return Ok(Err(ProjectRefusal::Invalid("import_url", format!("is blocked: {e}")))),
    };
    let pin = match &origin {
        Origin::Local(path) => {
            if let Err(why) = local_import_allowed(spur, user.admin, path) {
                return Ok(Err(ProjectRefusal::Invalid("import_url", format!("is blocked: {why}"))));
            }
            crate::git::GitPin::default()
        }
        Origin::Remote(url) => match crate::outbound::git_pin(url, &spur.outbound_policy()).await {
            Ok(pin) => pin,
            Err(why) => return Ok(Err(ProjectRefusal::Invalid("import_url", format!("is blocked: {why}")))),
        },
        Origin::Hosted => crate::git::GitPin::default(),
    };
    if spur.store.project_by_path(&format!("{}/{}", ns.path, path))?.is_some() {
        return Ok(Err(ProjectRefusal::Taken));
    }
    let repo_name = uuid::Uuid::now_v7().simple().to_string();
    let default_branch = match spur.repos.prepare(&repo_name, &origin, &auth, &pin).await {
        Ok(b) => b,
        Err(e) => return Ok(Err(ProjectRefusal::Invalid("import_url", e))),
    };
    let new = NewProject {
        name,
        path,
        namespace_id: ns.id,
        namespace_path: ns.path.clone(),
        description,
        visibility,
        import_url: import_url.map(|u| match &origin {
            Origin::Local(p) => p.display().to_string(),
            _ => u,
        }),
        repo_name: repo_name.clone(),
        default_branch,
        creator_id: user.id,
        import_credentials,
        deploy_key,
        now: clock::now(),
    };
    match spur.store.create_project(new).await? {
        Ok(project) => {
            tracing::info!(project_id = project.id, path = %project.full_path, "project created");
            if let Err(e) = crate::push::record_refs(spur, &project).await {
                tracing::warn!(project_id = project.id, error = %e, "could not record the project's refs");
            }
            Ok(Ok(project))
        }
        Err(_) => {
            spur.repos.forget(&repo_name, &origin).await;
            Ok(Err(ProjectRefusal::Taken))
        }
    }
}

/// Whether `user` may import the repository at `path` on this server: administrators only,
/// never from inside the data dir, and only from `--import-path-dir` folders when any are set.
fn local_import_allowed(spur: &Spur, admin: bool, path: &std::path::Path) -> Result<(), String> {
    if !admin {
        return Err("only administrators may import a path on the server".into());
    }
    let real = path
        .canonicalize()
        .map_err(|_| "is not a git repository on this server".to_string())?;
    let data = spur.data_dir.canonicalize().unwrap_or_else(|_| spur.data_dir.clone());
    if real.starts_with(&data) {
        return Err("spur's own data dir cannot be imported".into());
    }
    let dirs = &spur.import_path_dirs;
    if !dirs.is_empty() && !dirs.iter().any(|d| d.canonicalize().is_ok_and(|d| real.starts_with(d))) {
        return Err("the path is outside the folders local imports may come from".into());
    }
    Ok(())
}

/// A path from a name: lower case, runs of other characters become `-`.
fn slug(name: &str) -> String {
    let mut out = String::new();
    for c in name.trim().chars() {
        if c.is_ascii_alphanumeric() || c == '_' || c == '.' {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}
