//! Turning `.gitlab-ci.yml` text into configuration (the pipeline engine's front end). So far:
//! loading YAML as GitLab's Psych does. No IO: callers pass the file's text.

pub mod yaml;
