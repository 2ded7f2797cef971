//! Composing the raw configuration before validation, in GitLab's order: `include:local` files
//! deep-merged under the main file, then `extends`, then `!reference` tags.

use super::yaml::{self, Mapping, Yaml};

/// At most this many files may be included (GitLab's default).
const MAX_INCLUDES: usize = 150;
/// At most this many ancestors in an `extends` chain.
const MAX_EXTENDS_DEPTH: usize = 10;
/// At most this many nested `!reference` resolutions.
const MAX_REFERENCE_DEPTH: usize = 10;

/// Recursively merges `b` into `a`: mappings merge key by key; anything else in `b` replaces
/// what `a` had (lists are replaced; an explicit `null` deletes an inherited value).
pub fn deep_merge(a: &mut Mapping, b: Mapping) {
    for (key, value) in b.into_entries() {
        match (a.get_mut(&key), value) {
            (Some(Yaml::Map(left)), Yaml::Map(right)) => deep_merge(left, right),
            (_, value) => a.insert(key, value),
        }
    }
}

/// Where configuration files come from: the pipeline's repository at its commit and, for
/// `include:project`, other projects that the pipeline's user may read.
pub trait FileSource {
    /// A file of this repository, or `None`.
    fn read(&self, path: &str) -> Option<String>;

    /// The files of project `path` at `ref_name` (`None`: its default branch), or GitLab's error
    /// when it does not exist, may not be read, or has no such ref.
    fn project(&self, path: &str, ref_name: Option<&str>) -> Result<Box<dyn FileSource + '_>, String> {
        let _ = ref_name;
        Err(project_not_found(path))
    }
}

impl<F: Fn(&str) -> Option<String>> FileSource for F {
    fn read(&self, path: &str) -> Option<String> {
        self(path)
    }
}

/// GitLab's answer for a project that does not exist or may not be read (indistinguishable).
pub fn project_not_found(path: &str) -> String {
    format!(
        "Project `{path}` not found or access denied! Make sure any includes in the pipeline configuration are correctly defined."
    )
}

/// One entry of `include`.
enum Include {
    Local(String),
    Project {
        project: String,
        ref_name: Option<String>,
        files: Vec<String>,
    },
}

/// Resolves `include` (`local` and `project`) with `source` giving files' text.
pub fn resolve_includes(mut config: Mapping, source: &dyn FileSource) -> Result<Mapping, String> {
    let mut count = 0;
    resolve_includes_in(&mut config, source, &mut count)?;
    Ok(config)
}

fn resolve_includes_in(config: &mut Mapping, source: &dyn FileSource, count: &mut usize) -> Result<(), String> {
    let Some(include) = config.remove("include") else {
        return Ok(());
    };
    let mut merged = Mapping::default();
    for item in includes(&include)? {
        match item {
            Include::Local(path) => {
                let text = included_text(source, &path, count, |p| format!("Local file `{p}` does not exist!"))?;
                let mut included = load_included(&text, &format!("Local file `{path}`"))?;
                resolve_includes_in(&mut included, source, count)?;
                deep_merge(&mut merged, included);
            }
            Include::Project {
                project,
                ref_name,
                files,
            } => {
                let other = source.project(&project, ref_name.as_deref())?;
                for path in files {
                    let missing = |p: &str| format!("Project `{project}` file `{p}` does not exist!");
                    let text = included_text(other.as_ref(), &path, count, missing)?;
                    if text.trim().is_empty() {
                        return Err(format!("Project `{project}` file `{path}` is empty!"));
                    }
                    let mut included = load_included(&text, &format!("Project `{project}` file `{path}`"))?;
                    resolve_includes_in(&mut included, other.as_ref(), count)?;
                    deep_merge(&mut merged, included);
                }
            }
        }
    }
    deep_merge(&mut merged, std::mem::take(config));
    *config = merged;
    Ok(())
}

/// Counts an include against the limit, checks its extension and reads it.
fn included_text(
    source: &dyn FileSource,
    path: &str,
    count: &mut usize,
    missing: impl Fn(&str) -> String,
) -> Result<String, String> {
    *count += 1;
    if *count > MAX_INCLUDES {
        return Err(format!("Maximum of {MAX_INCLUDES} nested includes are allowed!"));
    }
    let relative = path.trim_start_matches('/');
    if !(relative.ends_with(".yml") || relative.ends_with(".yaml")) {
        return Err(format!("Included file `{path}` does not have YAML extension!"));
    }
    source.read(relative).ok_or_else(|| missing(path))
}

fn load_included(text: &str, what: &str) -> Result<Mapping, String> {
    yaml::load(text)
        .map(|(m, _)| m)
        .map_err(|e| format!("{what} does not have valid YAML syntax! Error: {e}"))
}

fn includes(include: &Yaml) -> Result<Vec<Include>, String> {
    let text = |y: Option<&Yaml>| match y {
        Some(Yaml::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let one = |item: &Yaml| -> Result<Include, String> {
        match item {
            Yaml::Str(s) if s.starts_with("http://") || s.starts_with("https://") => Err(format!(
                "Remote file `{s}` could not be fetched: include:remote is not supported by spur"
            )),
            Yaml::Str(s) => Ok(Include::Local(s.clone())),
            Yaml::Map(m) => match (m.get("local"), m.get("remote"), m.get("template"), m.get("project")) {
                (Some(Yaml::Str(s)), _, _, _) => Ok(Include::Local(s.clone())),
                (_, Some(_), _, _) => Err("include:remote is not supported by spur".to_string()),
                (_, _, Some(_), _) => Err("include:template is not supported by spur".to_string()),
                (_, _, _, Some(Yaml::Str(project))) => {
                    let files = match m.get("file") {
                        Some(Yaml::Str(f)) => vec![f.clone()],
                        Some(Yaml::Seq(items)) => items.iter().filter_map(|i| text(Some(i))).collect(),
                        _ => Vec::new(),
                    };
                    if files.is_empty() {
                        return Err("Include `project` needs a `file`".to_string());
                    }
                    Ok(Include::Project {
                        project: project.trim_matches('/').to_string(),
                        ref_name: text(m.get("ref")),
                        files,
                    })
                }
                _ => Err("Include config must be a string or a hash with a local key".to_string()),
            },
            _ => Err("Include config must be a string or a list".to_string()),
        }
    };
    match include {
        Yaml::Seq(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

/// Resolves every `extends` in the configuration.
pub fn resolve_extends(config: &Mapping) -> Result<Mapping, String> {
    let mut out = config.clone();
    for (name, value) in config.iter() {
        if matches!(value, Yaml::Map(m) if m.get("extends").is_some()) {
            let resolved = extended(config, name, &mut Vec::new())?;
            out.insert(name.clone(), Yaml::Map(resolved));
        }
    }
    Ok(out)
}

fn extended(config: &Mapping, name: &str, chain: &mut Vec<String>) -> Result<Mapping, String> {
    let Some(Yaml::Map(own)) = config.get(name) else {
        return Err(format!("{name}: invalid base hashes in `extends` ({name})"));
    };
    let parents = match own.get("extends") {
        None => return Ok(own.clone()),
        Some(Yaml::Str(p)) => vec![p.clone()],
        Some(Yaml::Seq(items)) => items
            .iter()
            .filter_map(|i| if let Yaml::Str(s) = i { Some(s.clone()) } else { None })
            .collect(),
        Some(_) => return Err(format!("{name}: invalid extends")),
    };
    if chain.iter().any(|c| c == name) {
        return Err(format!("{name}: circular dependency detected in `extends`"));
    }
    if chain.len() >= MAX_EXTENDS_DEPTH {
        return Err(format!("{name}: nesting too deep in `extends`"));
    }
    let unknown: Vec<&str> = parents
        .iter()
        .filter(|p| config.get(p).is_none())
        .map(String::as_str)
        .collect();
    if !unknown.is_empty() {
        return Err(format!("{name}: unknown keys in `extends` ({})", unknown.join(", ")));
    }
    chain.push(name.to_string());
    let mut merged = Mapping::default();
    for parent in &parents {
        if !matches!(config.get(parent), Some(Yaml::Map(_))) {
            return Err(format!("{name}: invalid base hashes in `extends` ({parent})"));
        }
        let resolved = extended(config, parent, chain).map_err(|e| {
            if e.starts_with(&format!("{parent}: circular")) {
                format!("{name}: circular dependency detected in `extends`")
            } else {
                e
            }
        })?;
        deep_merge(&mut merged, resolved);
    }
    chain.pop();
    deep_merge(&mut merged, own.clone());
    Ok(merged)
}

/// Replaces every `!reference [path...]` with the value it names in `root`.
pub fn resolve_references(root: &Mapping) -> Result<Mapping, String> {
    let mut out = Mapping::default();
    for (k, v) in root.iter() {
        out.insert(k.clone(), resolve_value(root, v, &mut Vec::new())?);
    }
    Ok(out)
}

fn resolve_value(root: &Mapping, value: &Yaml, seen: &mut Vec<Vec<String>>) -> Result<Yaml, String> {
    Ok(match value {
        Yaml::Tagged(tag, inner) if tag == "reference" => {
            let path = reference_path(inner)?;
            let shown = format!(
                "[{}]",
                path.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", ")
            );
            if seen.contains(&path) || seen.len() >= MAX_REFERENCE_DEPTH {
                return Err(format!("!reference {shown} is part of a circular chain"));
            }
            let mut cursor = path.first().and_then(|first| root.get(first));
            for part in path.iter().skip(1) {
                cursor = match cursor {
                    Some(Yaml::Map(m)) => m.get(part),
                    _ => None,
                };
            }
            let found = cursor
                .cloned()
                .ok_or_else(|| format!("!reference {shown} could not be found"))?;
            seen.push(path);
            let resolved = resolve_value(root, &found, seen)?;
            seen.pop();
            resolved
        }
        Yaml::Tagged(tag, _) => return Err(format!("!{tag} is not a supported tag")),
        Yaml::Seq(items) => Yaml::Seq(
            items
                .iter()
                .map(|i| resolve_value(root, i, seen))
                .collect::<Result<_, _>>()?,
        ),
        Yaml::Map(m) => {
            let mut out = Mapping::default();
            for (k, v) in m.iter() {
                out.insert(k.clone(), resolve_value(root, v, seen)?);
            }
            Yaml::Map(out)
        }
        other => other.clone(),
    })
}

fn reference_path(inner: &Yaml) -> Result<Vec<String>, String> {
    match inner {
        Yaml::Seq(items) if !items.is_empty() => items
            .iter()
            .map(|i| {
                if let Yaml::Str(s) = i {
                    Ok(s.clone())
                } else {
                    Err(format!("!reference {inner:?} is not valid"))
                }
            })
            .collect(),
        _ => Err(format!("!reference {inner:?} is not valid")),
    }
}
