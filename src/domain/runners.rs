//! GitLab runners.

use super::*;
use serde::{Deserialize, Serialize};

/// A GitLab runner attached to spur (an instance runner: it may take any project's jobs).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Runner {
    /// Instance-wide id.
    pub id: u64,
    /// Free text shown in lists.
    pub description: String,
    /// The tags of jobs it takes.
    pub tags: Vec<String>,
    /// Whether it also takes jobs without tags.
    pub run_untagged: bool,
    /// A paused runner gets no jobs.
    pub paused: bool,
    /// `not_protected` or `ref_protected`.
    pub access_level: String,
    /// The longest timeout it accepts, in seconds.
    pub maximum_timeout: Option<u64>,
    /// `glrt-` (created by an admin) or a legacy registration.
    pub created_by_admin: bool,
    /// Creation time.
    pub created_at: Millis,
    /// When it last asked for a job (coarse: stored at most once a minute).
    pub contacted_at: Option<Millis>,
    /// What the runner said of itself (`info`: name, version, platform, architecture, executor).
    #[serde(default)]
    pub info: RunnerInfo,
    /// The hosts (`system_id`) that use its token.
    #[serde(default)]
    pub managers: Vec<String>,
    /// The keyed digest of its authentication token (the token itself is never stored).
    pub token_digest: Vec<u8>,
}

/// A runner's `info` as it sends it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunnerInfo {
    /// `gitlab-runner`, ...
    pub name: Option<String>,
    /// Its version.
    pub version: Option<String>,
    /// `linux`, ...
    pub platform: Option<String>,
    /// `amd64`, ...
    pub architecture: Option<String>,
    /// `shell`, `docker`, ...
    pub executor: Option<String>,
}
