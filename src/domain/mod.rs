//! The nouns of spur and their invariants: users, namespaces, projects, members, trigger tokens,
//! pipelines and their variables. No IO, no HTTP, no wire shapes: storage encodes these records,
//! and `http::api` turns them into GitLab's JSON at the edge.

mod accounts;
mod environments;
mod images;
mod job_files;
mod pipelines;
mod projects;
mod releases;
mod runners;
mod schedules;
mod test_reports;
mod variables;

pub use accounts::*;
pub use environments::*;
pub use images::*;
pub use job_files::*;
pub use pipelines::*;
pub use projects::*;
pub use releases::*;
pub use runners::*;
pub use schedules::*;
pub use test_reports::*;
pub use variables::*;

/// Milliseconds since the Unix epoch, UTC; every timestamp spur stores.
pub type Millis = i64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_keys() {
        assert!(is_valid_variable_key("DEPLOY_ENV_2"));
        assert!(!is_valid_variable_key("BAD-KEY"));
        assert!(!is_valid_variable_key(""));
        assert!(!is_valid_variable_key(&"A".repeat(256)));
    }

    #[test]
    fn paths() {
        assert!(is_valid_path("my-project.rs"));
        assert!(!is_valid_path("-x"));
        assert!(!is_valid_path("a/b"));
        assert!(!is_valid_path("repo.git"));
    }

    #[test]
    fn override_role() {
        assert!(VariablesOverrideRole::Developer.allows(Some(AccessLevel::Developer)));
        assert!(!VariablesOverrideRole::Maintainer.allows(Some(AccessLevel::Developer)));
        assert!(!VariablesOverrideRole::NoOneAllowed.allows(Some(AccessLevel::Owner)));
    }
}
