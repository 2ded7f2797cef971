//! `include:component` addresses as GitLab reads them (`Components::InstancePath`):
//! `<instance FQDN>/<project path>/<component name>@<version>`, the version a tag, a branch,
//! a commit SHA, `~latest` (the highest released semantic version) or a partial version (`1`,
//! `1.2`: its highest release); the component's file under the project's `templates/`.

/// A parsed component address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The project's full path.
    pub project: String,
    /// The component's name (the address's last segment).
    pub name: String,
    /// The version as written.
    pub version: String,
}

/// Reads `address`; components live on this instance (`fqdn`, host and non-default port).
pub fn parse(address: &str, fqdn: &str) -> Result<Address, String> {
    let Some((path, version)) = address.split_once('@') else {
        return Err(format!(
            "Component '{address}' - the component path must end with @VERSION"
        ));
    };
    let (host, rest) = path.split_once('/').unwrap_or((path, ""));
    if !host.eq_ignore_ascii_case(fqdn) {
        return Err(format!(
            "Component '{address}' - spur includes components from this instance ({fqdn}) only, not from {host}"
        ));
    }
    let Some((project, name)) = rest.rsplit_once('/') else {
        return Err(format!(
            "Component '{address}' - the path must name a project and a component"
        ));
    };
    if project.is_empty() || name.is_empty() || version.is_empty() {
        return Err(format!(
            "Component '{address}' - the path must name a project and a component"
        ));
    }
    Ok(Address {
        project: project.to_string(),
        name: name.to_string(),
        version: version.to_string(),
    })
}

/// The files a component may be, in GitLab's order.
pub fn files(name: &str) -> [String; 2] {
    [
        format!("templates/{name}.yml"),
        format!("templates/{name}/template.yml"),
    ]
}

/// A released version: `MAJOR.MINOR.PATCH` without a pre-release part.
fn release(tag: &str) -> Option<(u64, u64, u64)> {
    let mut parts = tag.split('.');
    let v = (
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
        parts.next()?.parse().ok()?,
    );
    parts.next().is_none().then_some(v)
}

/// The ref a version names: `~latest` and partial versions pick the highest matching release
/// among `tags`; anything else is used as written (a tag, a branch or a SHA). `None` when no
/// release matches.
pub fn pick(version: &str, tags: &[String]) -> Option<String> {
    let prefix: Option<Vec<u64>> = if version == "~latest" {
        Some(Vec::new())
    } else {
        let numbers: Option<Vec<u64>> = version.split('.').map(|p| p.parse().ok()).collect();
        numbers.filter(|n| n.len() < 3)
    };
    let Some(prefix) = prefix else {
        return Some(version.to_string());
    };
    tags.iter()
        .filter_map(|t| release(t).map(|v| (v, t)))
        .filter(|((major, minor, _), _)| {
            prefix.first().is_none_or(|m| m == major) && prefix.get(1).is_none_or(|m| m == minor)
        })
        .max_by_key(|(v, _)| *v)
        .map(|(_, t)| t.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_and_versions() {
        let a = parse("spur.example:8443/group/sub/ci/build@1.2", "spur.example:8443").unwrap();
        assert_eq!(
            (a.project.as_str(), a.name.as_str(), a.version.as_str()),
            ("group/sub/ci", "build", "1.2")
        );
        assert!(
            parse("gitlab.com/components/sast/sast@2.0.0", "spur.example")
                .unwrap_err()
                .contains("not from gitlab.com")
        );
        assert!(parse("spur.example/p/c", "spur.example").is_err());
        let tags: Vec<String> = ["1.0.0", "1.2.0", "1.2.7", "2.0.0-rc1", "1.10.1", "v3.0.0", "stable"]
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(pick("~latest", &tags).as_deref(), Some("1.10.1"));
        assert_eq!(pick("1.2", &tags).as_deref(), Some("1.2.7"));
        assert_eq!(pick("1", &tags).as_deref(), Some("1.10.1"));
        assert_eq!(pick("4", &tags), None);
        assert_eq!(pick("stable", &tags).as_deref(), Some("stable"));
        assert_eq!(pick("1.2.0", &tags).as_deref(), Some("1.2.0"));
        assert_eq!(files("build")[1], "templates/build/template.yml");
    }
}
