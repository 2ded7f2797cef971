//! Turning `.gitlab-ci.yml` text into a planned pipeline (the pipeline engine's front end):
//! `yaml` loads as Psych does, `compose` applies include/extends/!reference, `variables` and
//! `policy` decide values and inclusion, `plan` runs GitLab's algorithm. No IO: callers pass a
//! file reader and the file list at the pipeline's commit.

pub mod bridge;
pub mod component;
pub mod compose;
mod composed;
pub use composed::plans_quickly;
pub mod inputs;
pub mod job_settings;
mod needs;
mod parallel;
pub mod plan;
pub mod policy;
mod predefined;
mod validate;
pub mod variables;
pub mod yaml;

#[cfg(test)]
mod cases;
