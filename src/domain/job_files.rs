//! What a job keeps and receives besides its log: its artifacts (the `artifacts:` keyword and
//! the archive kept), the artifacts it needs from elsewhere, and its cache policy.

use super::Millis;
use serde::{Deserialize, Serialize};

/// A job's uploaded artifacts archive (a zip under `<data-dir>/artifacts/`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactsFile {
    /// The file name users download it as (`artifacts.zip`).
    pub filename: String,
    /// Its size in bytes.
    pub size: u64,
    /// When it is deleted; `None` keeps it.
    pub expire_at: Option<Millis>,
}

/// An artifact dependency outside the pipeline: the latest successful `job` of `project` on
/// `ref_name` (`needs:project`), or of the parent pipeline (`needs:pipeline:job`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactNeed {
    /// The other project's path; `None` for the parent pipeline.
    pub project: Option<String>,
    /// The job's name.
    pub job: String,
    /// The ref whose latest pipelines are searched (the project's default branch when absent).
    pub ref_name: Option<String>,
}

/// `cache:policy`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CachePolicy {
    /// Restored before the job and saved after it.
    #[default]
    PullPush,
    /// Restored only.
    Pull,
    /// Saved only.
    Push,
}

/// A job's `artifacts:` keyword.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactsSpec {
    /// `name` (after expansion) of the archive users download.
    pub name: Option<String>,
    /// `paths`: files, folders and globs under the project dir.
    pub paths: Vec<String>,
    /// `exclude` globs.
    pub exclude: Vec<String>,
    /// `untracked`: also every file git does not track.
    pub untracked: bool,
    /// `when`: `on_success` (default), `on_failure` or `always`.
    pub when: String,
    /// `expire_in` as written (`1 week`, `never`); the instance default when absent.
    pub expire_in: Option<String>,
}
