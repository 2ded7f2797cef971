//! A job's container images: `image:` and each of `services:`, with GitLab's sub-keys. Stored
//! records from before these sub-keys existed held a bare name; both shapes read back.

use serde::{Deserialize, Serialize};

/// One `image:` or `services:` entry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ImageRecord")]
pub struct Image {
    /// `name`: the image reference, variables not yet expanded.
    pub name: String,
    /// `entrypoint`, replacing the image's own (an empty list clears it).
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// `command` (services): replaces the image's `CMD`.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// `alias` (services): extra host names, separated by spaces or commas.
    #[serde(default)]
    pub alias: Option<String>,
    /// `pull_policy`: `always`, `if-not-present`, `never`, tried in order; empty is `always`.
    #[serde(default)]
    pub pull_policy: Vec<String>,
    /// `variables` (services): set in the service's container only.
    #[serde(default)]
    pub variables: Vec<(String, String)>,
    /// `docker:user`: the user the container runs as.
    #[serde(default)]
    pub user: Option<String>,
}

/// What a stored image reads as: a record, or the bare name older records kept.
#[derive(Deserialize)]
#[serde(untagged)]
enum ImageRecord {
    Name(String),
    Full {
        name: String,
        #[serde(default)]
        entrypoint: Option<Vec<String>>,
        #[serde(default)]
        command: Option<Vec<String>>,
        #[serde(default)]
        alias: Option<String>,
        #[serde(default)]
        pull_policy: Vec<String>,
        #[serde(default)]
        variables: Vec<(String, String)>,
        #[serde(default)]
        user: Option<String>,
    },
}

impl From<ImageRecord> for Image {
    fn from(record: ImageRecord) -> Image {
        match record {
            ImageRecord::Name(name) => Image {
                name,
                ..Image::default()
            },
            ImageRecord::Full {
                name,
                entrypoint,
                command,
                alias,
                pull_policy,
                variables,
                user,
            } => Image {
                name,
                entrypoint,
                command,
                alias,
                pull_policy,
                variables,
                user,
            },
        }
    }
}

impl Image {
    /// The host names a service answers to (GitLab's): `alias` entries, then the image path
    /// without its tag or digest with `/` as `-` and as `__` (`tutum/wordpress:1` is
    /// `tutum-wordpress` and `tutum__wordpress`), each kept only when it is a valid host name.
    pub fn host_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        if let Some(alias) = &self.alias {
            names.extend(alias.split([' ', ',']).filter(|a| !a.is_empty()).map(str::to_string));
        }
        let path = self.name.split('@').next().unwrap_or_default();
        let path = match path.rfind(':') {
            Some(i) if !path[i..].contains('/') => &path[..i],
            _ => path,
        };
        // A registry's port goes too: `registry.example.com:5000/db/pg` is
        // `registry.example.com__db__pg`.
        let path = match path.split_once('/') {
            Some((registry, rest)) if registry.contains(':') => {
                format!("{}/{rest}", registry.split(':').next().unwrap_or_default())
            }
            _ => path.to_string(),
        };
        names.push(path.replace('/', "__"));
        names.push(path.replace('/', "-"));
        let mut kept: Vec<String> = Vec::new();
        for name in names {
            if is_host_name(&name) && !kept.contains(&name) {
                kept.push(name);
            }
        }
        kept
    }
}

/// A DNS name of letters, digits, `-`, `_` and `.` (what container engines accept as an alias).
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && !name.starts_with(['-', '.'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_records_hold_a_bare_name() {
        let image: Image = serde_json::from_str("\"ruby:3.3\"").unwrap();
        assert_eq!(image.name, "ruby:3.3");
        let full: Image = serde_json::from_str(
            &serde_json::to_string(&Image {
                name: "x".into(),
                entrypoint: Some(vec![]),
                ..Image::default()
            })
            .unwrap(),
        )
        .unwrap();
        assert_eq!(full.entrypoint, Some(vec![]));
    }

    #[test]
    fn service_host_names_follow_gitlab() {
        let service = |name: &str, alias: Option<&str>| Image {
            name: name.into(),
            alias: alias.map(str::to_string),
            ..Image::default()
        };
        assert_eq!(
            service("tutum/wordpress:latest", None).host_names(),
            ["tutum__wordpress", "tutum-wordpress"]
        );
        assert_eq!(
            service("registry.example.com:5000/db/pg@sha256:ab", Some("db pg,x")).host_names(),
            [
                "db",
                "pg",
                "x",
                "registry.example.com__db__pg",
                "registry.example.com-db-pg"
            ]
        );
        assert_eq!(service("postgres", None).host_names(), ["postgres"]);
    }
}
