//! Namespaces, projects, members, protected refs, webhooks, status integrations and the
//! instance's application settings.

use super::*;
use serde::{Deserialize, Serialize};

/// Who may see a project or group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Visibility {
    /// Members and admins only.
    Private,
    /// Any signed-in user.
    Internal,
    /// Anyone, signed in or not.
    Public,
}

impl Visibility {
    /// GitLab's lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Internal => "internal",
            Visibility::Public => "public",
        }
    }

    /// GitLab's refusal when a project of this visibility sits in a group of `group`'s
    /// (`public is not allowed in a private group.`), if it may not.
    pub fn refused_in_group(self, group: Visibility) -> Option<String> {
        let rank = |v: Visibility| v as u8;
        (rank(self) > rank(group)).then(|| format!("{} is not allowed in a {} group.", self.as_str(), group.as_str()))
    }

    /// Parses GitLab's lower-case name.
    pub fn parse(s: &str) -> Option<Visibility> {
        Some(match s {
            "private" => Visibility::Private,
            "internal" => Visibility::Internal,
            "public" => Visibility::Public,
            _ => return None,
        })
    }
}

/// Whether a namespace belongs to one user or is a shared group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum NamespaceKind {
    /// A user's personal namespace.
    User,
    /// A group that several members share.
    Group,
}

/// A namespace: the first part of a project's path.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Namespace {
    /// Numeric id.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// URL path, unique among namespaces.
    pub path: String,
    /// User or group.
    pub kind: NamespaceKind,
    /// For user namespaces, the user; for groups, the creator.
    pub owner_id: u64,
    /// Who may see the group.
    pub visibility: Visibility,
    /// Free text.
    pub description: String,
    /// Creation time.
    pub created_at: Millis,
}

/// The lowest role allowed to set pipeline variables (GitLab's
/// `ci_pipeline_variables_minimum_override_role`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VariablesOverrideRole {
    /// Nobody may set variables.
    NoOneAllowed,
    /// Owners only.
    Owner,
    /// Maintainers and owners.
    Maintainer,
    /// Developers and above (spur's default, so GitLab's documented examples work).
    Developer,
}

impl VariablesOverrideRole {
    /// GitLab's name for the setting's value.
    pub fn as_str(self) -> &'static str {
        match self {
            VariablesOverrideRole::NoOneAllowed => "no_one_allowed",
            VariablesOverrideRole::Owner => "owner",
            VariablesOverrideRole::Maintainer => "maintainer",
            VariablesOverrideRole::Developer => "developer",
        }
    }

    /// Parses GitLab's name for the setting's value.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "no_one_allowed" => VariablesOverrideRole::NoOneAllowed,
            "owner" => VariablesOverrideRole::Owner,
            "maintainer" => VariablesOverrideRole::Maintainer,
            "developer" => VariablesOverrideRole::Developer,
            _ => return None,
        })
    }

    /// Whether a caller with `level` may set pipeline variables.
    pub fn allows(self, level: Option<AccessLevel>) -> bool {
        let needed = match self {
            VariablesOverrideRole::NoOneAllowed => return false,
            VariablesOverrideRole::Owner => AccessLevel::Owner,
            VariablesOverrideRole::Maintainer => AccessLevel::Maintainer,
            VariablesOverrideRole::Developer => AccessLevel::Developer,
        };
        level.is_some_and(|l| l >= needed)
    }
}

/// A project: a git repository and its CI settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Project {
    /// Numeric id, never reused.
    pub id: u64,
    /// Display name.
    pub name: String,
    /// URL path inside the namespace.
    pub path: String,
    /// The namespace the project lives in.
    pub namespace_id: u64,
    /// `namespace/path`, kept with the record so lookups need one read.
    pub full_path: String,
    /// Free text.
    pub description: String,
    /// Who may see the project.
    pub visibility: Visibility,
    /// Where the repository comes from; `None` for a repository hosted by spur.
    pub import_url: Option<String>,
    /// Name of the project's folder under `<data-dir>/repositories` (mirrors, hosted repos).
    pub repo_name: String,
    /// The branch HEAD points at, when the repository has one.
    pub default_branch: Option<String>,
    /// Lowest role allowed to set pipeline variables.
    pub variables_override_role: VariablesOverrideRole,
    /// The user who created the project.
    pub creator_id: u64,
    /// Creation time.
    pub created_at: Millis,
    /// Last change to the record.
    pub updated_at: Millis,
    /// The credentials of `import_url` (`user:token`), sealed with the data dir's key; the URL
    /// itself is stored without them.
    #[serde(default)]
    pub import_credentials: Option<Vec<u8>>,
    /// How often spur fetches this mirror, in seconds; `None` uses `--mirror-interval`.
    #[serde(default)]
    pub mirror_interval_secs: Option<u64>,
    /// The SSH key spur fetches an `ssh://` (or `user@host:path`) origin with.
    #[serde(default)]
    pub deploy_key: Option<DeployKey>,
}

/// A project's SSH deploy key for its mirror.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployKey {
    /// The public key line (`ssh-ed25519 AAAA… comment`), shown to Maintainers.
    pub public: String,
    /// The private key, sealed with the data dir's key; never shown.
    pub private_sealed: Vec<u8>,
}

/// One user's membership of a project or group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Membership {
    /// The member's role.
    pub access_level: AccessLevel,
    /// When the membership was created.
    pub created_at: Millis,
    /// The membership ends at the start of this day, if set.
    pub expires_at: Option<Millis>,
}

/// Whether `path` is a valid project, group or user path (GitLab's rules, simplified): starts
/// with a letter, digit or `_`, then letters, digits, `_`, `-`, `.`; not ending in `.git` or
/// `.atom`, at most 255 characters.
pub fn is_valid_path(path: &str) -> bool {
    let bytes = path.as_bytes();
    let Some(first) = bytes.first() else {
        return false;
    };
    path.len() <= 255
        && (first.is_ascii_alphanumeric() || *first == b'_')
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !path.ends_with('.')
        && !path.ends_with(".git")
        && !path.ends_with(".atom")
}

/// GitLab's top-level routes (`Gitlab::PathRegex::TOP_LEVEL_ROUTES`): no user or group may take
/// one as its path, or its pages would hide the route (spur's own `/admin`, `/assets`,
/// `/projects`, `/users` among them).
const TOP_LEVEL_ROUTES: [&str; 39] = [
    "-",
    ".well-known",
    "404.html",
    "422.html",
    "500.html",
    "502.html",
    "503.html",
    "admin",
    "api",
    "apple-touch-icon.png",
    "assets",
    "dashboard",
    "deploy.html",
    "explore",
    "favicon.ico",
    "favicon.png",
    "files",
    "groups",
    "health_check",
    "help",
    "import",
    "jwt",
    "login",
    "oauth",
    "profile",
    "projects",
    "public",
    "robots.txt",
    "s",
    "search",
    "sitemap",
    "sitemap.xml",
    "sitemap.xml.gz",
    "slash-command-logo.png",
    "snippets",
    "unsubscribes",
    "uploads",
    "users",
    "v2",
];

/// Whether a user or group path is reserved for a top-level route (GitLab's
/// `<path> is a reserved name`).
pub fn is_reserved_namespace_path(path: &str) -> bool {
    TOP_LEVEL_ROUTES.iter().any(|r| r.eq_ignore_ascii_case(path))
}

/// The instance's application settings (`/api/v4/application/settings`) spur keeps: those
/// that govern requests to the local network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplicationSettings {
    /// GitLab's `allow_local_requests_from_web_hooks_and_services`.
    #[serde(default)]
    pub allow_local_requests_from_web_hooks_and_services: bool,
    /// GitLab's `allow_local_requests_from_system_hooks` (kept for the API; spur has no
    /// system hooks).
    #[serde(default = "yes")]
    pub allow_local_requests_from_system_hooks: bool,
    /// GitLab's `outbound_local_requests_whitelist`: IPs, networks, hosts, `host:port`.
    #[serde(default)]
    pub outbound_local_requests_whitelist: Vec<String>,
}

fn yes() -> bool {
    true
}

impl Default for ApplicationSettings {
    fn default() -> Self {
        ApplicationSettings {
            allow_local_requests_from_web_hooks_and_services: false,
            allow_local_requests_from_system_hooks: true,
            outbound_local_requests_whitelist: Vec::new(),
        }
    }
}

/// Whether a protection rule covers branches or tags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefKind {
    /// `refs/heads/*`.
    Branch,
    /// `refs/tags/*`.
    Tag,
}

impl RefKind {
    /// The kind's name in storage keys and forms.
    pub fn as_str(self) -> &'static str {
        match self {
            RefKind::Branch => "branch",
            RefKind::Tag => "tag",
        }
    }

    /// Parses a kind's name.
    pub fn parse(s: &str) -> Option<RefKind> {
        match s {
            "branch" => Some(RefKind::Branch),
            "tag" => Some(RefKind::Tag),
            _ => None,
        }
    }
}

/// A protected branch or tag rule: a name or a `*` wildcard pattern, and who may push, merge or
/// create. Levels are GitLab's numbers: 0 no one, 30 Developers + Maintainers, 40 Maintainers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedRef {
    /// Instance-wide id.
    pub id: u64,
    /// The project.
    pub project_id: u64,
    /// Branches or tags.
    pub kind: RefKind,
    /// A name, or a pattern where `*` matches anything.
    pub name: String,
    /// Who may push (branches).
    pub push_access_level: u8,
    /// Who may merge, and so run pipelines (branches).
    pub merge_access_level: u8,
    /// Who may create matching tags.
    pub create_access_level: u8,
    /// Whether force pushes are allowed (branches).
    pub allow_force_push: bool,
}

/// A project badge: a link and an image shown on the project, with `%{...}` placeholders.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Badge {
    /// Instance-wide id.
    pub id: u64,
    /// The project.
    pub project_id: u64,
    /// Its name.
    pub name: Option<String>,
    /// Where it links.
    pub link_url: String,
    /// The image shown.
    pub image_url: String,
}

/// One delivery made (or given up) to a project webhook: GitLab's web hook log, kept so that a
/// failed delivery stays visible and can be sent again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HookLog {
    /// Id, increasing.
    pub id: u64,
    /// The webhook.
    pub hook_id: u64,
    /// GitLab's trigger name (`pipeline_hooks`, `job_hooks`, `push_hooks`, ...).
    pub trigger: String,
    /// Where it was posted.
    pub url: String,
    /// The request's headers, the secret token redacted.
    pub request_headers: Vec<(String, String)>,
    /// The JSON body posted (cut at 64 KiB for the log).
    pub request_data: String,
    /// The receiver's status code, if it answered.
    pub response_status: Option<u16>,
    /// The start of its answer (at most 8 KiB).
    pub response_body: String,
    /// Seconds the last attempt took.
    pub execution_duration: f64,
    /// Why no answer came (a refused address, a timeout).
    pub internal_error_message: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// When it ended.
    pub created_at: Millis,
}

/// A project webhook: where pipeline and job events are posted, in GitLab's payload format.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectHook {
    /// Instance-wide id.
    pub id: u64,
    /// The project.
    pub project_id: u64,
    /// Where events are posted.
    pub url: String,
    /// The secret sent as `X-Gitlab-Token`, sealed with the data dir's key.
    pub token_sealed: Option<Vec<u8>>,
    /// Post `Pipeline Hook` events.
    pub pipeline_events: bool,
    /// Post `Job Hook` events.
    pub job_events: bool,
    /// Post push events (kept for GitLab's API; spur posts none yet).
    pub push_events: bool,
    /// Kept for GitLab's API.
    pub enable_ssl_verification: bool,
    /// Creation time.
    pub created_at: Millis,
}

/// Where a mirrored project's commit statuses go: GitHub or Gitea (GitLab's GitHub
/// integration: `PUT /projects/:id/integrations/github`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusIntegration {
    /// The repository on the forge (`https://github.com/owner/repo`).
    pub repository_url: String,
    /// The forge's API root for statuses; derived from the URL when absent.
    pub api_url: Option<String>,
    /// The forge token, sealed with the data dir's key.
    pub token_sealed: Vec<u8>,
    /// Use the fixed context `ci/spur` rather than one per pipeline source.
    pub static_context: bool,
}
