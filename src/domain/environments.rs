//! Environments and deployments: where a job deploys (`environment:`), the environments a
//! project has, and one deployment record per job that names one. A deployment's status is its
//! job's, read when asked, so it can never disagree with the job.

use super::{JobStatus, Millis};
use serde::{Deserialize, Serialize};

/// A job's `environment:` (names and URLs expanded at pipeline creation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentSpec {
    /// `name`.
    pub name: String,
    /// `url`.
    pub url: Option<String>,
    /// `action`: `start` (default), `prepare`, `stop`, `verify` or `access`.
    pub action: String,
    /// `on_stop`: the job that stops it.
    pub on_stop: Option<String>,
    /// `auto_stop_in`, as written.
    pub auto_stop_in: Option<String>,
    /// `deployment_tier`, or the tier GitLab guesses from the name.
    pub tier: String,
}

/// One environment of a project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Environment {
    /// Unique over the instance.
    pub id: u64,
    /// The project.
    pub project_id: u64,
    /// Unique in the project.
    pub name: String,
    /// GitLab's slug of the name (`CI_ENVIRONMENT_SLUG`).
    pub slug: String,
    /// `external_url`.
    pub external_url: Option<String>,
    /// `production`, `staging`, `testing`, `development` or `other`.
    pub tier: String,
    /// `available`, `stopping` or `stopped`, as last set; see `domain` docs on deployments.
    pub state: String,
    /// When it was stopped (by the API or a stop job), to tell later deployments from earlier.
    pub stopped_at: Option<Millis>,
    /// The job stopping it, while `stopping`.
    pub stop_job_id: Option<u64>,
    /// When it stops by itself (`auto_stop_in` after its last deployment).
    pub auto_stop_at: Option<Millis>,
    /// Creation time.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
}

/// A job that names an environment: a deployment when its action is `start`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// Unique over the instance.
    pub id: u64,
    /// Per project, from 1.
    pub iid: u64,
    /// The project.
    pub project_id: u64,
    /// The environment.
    pub environment_id: u64,
    /// The job.
    pub job_id: u64,
    /// The job's pipeline.
    pub pipeline_id: u64,
    /// The job's `environment:action`.
    pub action: String,
    /// The job that stops the environment after this deployment (`on_stop`).
    pub on_stop: Option<String>,
    /// Creation time.
    pub created_at: Millis,
}

/// A deployment's status as GitLab names it, from its job's.
pub fn deployment_status(job: JobStatus) -> &'static str {
    match job {
        JobStatus::Running => "running",
        JobStatus::Success => "success",
        JobStatus::Failed => "failed",
        JobStatus::Canceled => "canceled",
        JobStatus::Skipped => "skipped",
        JobStatus::Manual => "blocked",
        _ => "created",
    }
}

/// GitLab's rule for environment names: letters, digits, `-`, `_`, `/`, `$`, `{`, `}`, `.`
/// and spaces, not starting or ending with `/`, at most 255 characters.
pub fn valid_environment_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || " -_/.{}$".contains(c))
        && !name.starts_with('/')
        && !name.ends_with('/')
}

/// The tier GitLab guesses from an environment's name (`Environment#guess_tier`).
pub fn guess_tier(name: &str) -> &'static str {
    let n = name.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| n.contains(w));
    // GitLab's order: development, testing, staging, production.
    if has(&["dev", "review", "trunk"]) {
        "development"
    } else if has(&["test", "tst", "int", "accept", "acpt", "qa", "qc", "control", "quality"]) {
        "testing"
    } else if has(&["stag", "stg", "model", "modl", "pre", "demo", "non"]) {
        "staging"
    } else if has(&["prod", "prd", "live"]) {
        "production"
    } else {
        "other"
    }
}

/// GitLab's environment slug (`Gitlab::Slug::Environment`): lower-case letters, digits and
/// dashes, starting with a letter, at most 24 characters; a name it had to change gets a
/// six-character suffix from the name's SHA-256.
pub fn environment_slug(name: &str, sha256_hex: &str) -> String {
    let mut slug: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    if !slug.starts_with(|c: char| c.is_ascii_lowercase()) {
        slug = format!("env-{slug}");
    }
    let mut squeezed = String::with_capacity(slug.len());
    for c in slug.chars() {
        if !(c == '-' && squeezed.ends_with('-')) {
            squeezed.push(c);
        }
    }
    if squeezed.len() > 24 || squeezed != name {
        let mut short: String = squeezed.chars().take(17).collect();
        if !short.ends_with('-') {
            short.push('-');
        }
        short.push_str(&base36_tail(sha256_hex));
        short
    } else {
        squeezed.trim_end_matches('-').to_string()
    }
}

/// The last six base-36 digits of a hex number (Ruby's `to_i(16).to_s(36).last(6)`).
fn base36_tail(hex: &str) -> String {
    const MODULUS: u64 = 36u64.pow(6);
    let mut r = 0u64;
    for d in hex.chars().filter_map(|c| c.to_digit(16)) {
        r = (r * 16 + u64::from(d)) % MODULUS;
    }
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = digits[(r % 36) as usize];
        r /= 36;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_and_tiers_follow_gitlab() {
        let h = "0".repeat(64);
        assert_eq!(environment_slug("production", &h), "production");
        assert_eq!(environment_slug("review/feature-x", &h), "review-feature-x-000000");
        assert_eq!(environment_slug("1st", &h), "env-1st-000000");
        assert_eq!(guess_tier("production"), "production");
        assert_eq!(guess_tier("staging"), "staging");
        assert_eq!(guess_tier("review/x"), "development");
        assert_eq!(guess_tier("qa"), "testing");
        assert_eq!(guess_tier("moon"), "other");
        assert_eq!(guess_tier("review/prod-fix"), "development");
        assert_eq!(guess_tier("preprod"), "staging");
        assert_eq!(guess_tier("prd"), "production");
        assert!(valid_environment_name("review/feature-1.2 ${X}"));
        assert!(!valid_environment_name("x<img>") && !valid_environment_name("a/") && !valid_environment_name("ünï"));
    }
}
