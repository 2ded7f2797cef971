//! CI/CD variables and the rules for their keys and masked values.

use serde::{Deserialize, Serialize};

/// How a variable reaches a job: as its value, or as a path to a file holding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VariableType {
    /// `env_var`: the value itself.
    EnvVar,
    /// `file`: a path to a temporary file with the value.
    File,
}

impl VariableType {
    /// GitLab's name for the type.
    pub fn as_str(self) -> &'static str {
        match self {
            VariableType::EnvVar => "env_var",
            VariableType::File => "file",
        }
    }
}

/// A pipeline variable (from a trigger, the API or the web form).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variable {
    /// Name: letters, digits and `_`, at most 255 characters.
    pub key: String,
    /// Value, any text.
    pub value: String,
    /// Environment value or file.
    pub variable_type: VariableType,
    /// `raw` variables are not `$`-expanded.
    pub raw: bool,
}

/// A project CI/CD variable (Settings > CI/CD > Variables). Stored sealed: values are secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectVariable {
    /// Name.
    pub key: String,
    /// Value.
    pub value: String,
    /// Environment value or file.
    pub variable_type: VariableType,
    /// Only for pipelines on protected refs (spur: the default branch).
    pub protected: bool,
    /// Hidden in job logs.
    pub masked: bool,
    /// Not `$`-expanded.
    pub raw: bool,
    /// Free text.
    pub description: Option<String>,
}

/// Whether `value` may be masked (GitLab's rules): one line, at least 8 characters, from the
/// Base64 alphabet plus `@ : . ~ - _`.
pub fn is_maskable(value: &str) -> bool {
    value.chars().count() >= 8
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=' | '@' | ':' | '.' | '~' | '-' | '_'))
}

/// Whether `key` is a valid variable name: `[A-Za-z0-9_]{1,255}`.
pub fn is_valid_variable_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}
