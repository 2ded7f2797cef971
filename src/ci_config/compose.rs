//! Composing the raw configuration before validation, in GitLab's order: `include` entries
//! (variables expanded in their paths, `include:rules` applied, `local` wildcards expanded)
//! deep-merged under the main file, then `extends`, then `!reference` tags.

use super::component;
use super::inputs::{self, InputsError, Origin};
use super::policy::{self, Situation};
use super::variables::{self, VarList};
use super::yaml::{Mapping, Yaml};

/// At most this many files may be included (GitLab's default).
const MAX_INCLUDES: usize = 150;
/// At most this many ancestors in an `extends` chain.
const MAX_EXTENDS_DEPTH: usize = 10;
/// At most this many nested `!reference` resolutions.
const MAX_REFERENCE_DEPTH: usize = 10;

/// Recursively merges `b` into `a`: mappings merge key by key; anything else in `b` replaces
/// what `a` had (lists are replaced; an explicit `null` deletes an inherited value).
pub fn deep_merge(a: &mut Mapping, b: Mapping) {
    // Key positions in `a`, so that merging thousands of jobs stays linear.
    let mut index: std::collections::HashMap<String, usize> =
        a.iter().enumerate().map(|(i, (k, _))| (k.clone(), i)).collect();
    for (key, value) in b.into_entries() {
        match index.get(&key) {
            Some(&i) => match (a.value_at_mut(i), value) {
                (Some(Yaml::Map(left)), Yaml::Map(right)) => deep_merge(left, right),
                (Some(slot), value) => *slot = value,
                (None, _) => {}
            },
            None => {
                index.insert(key.clone(), a.len());
                a.push_new(key, value);
            }
        }
    }
}

/// Where configuration files come from: the pipeline's repository at its commit and, for
/// `include:project`, other projects that the pipeline's user may read.
pub trait FileSource {
    /// A file of this repository, or `None`.
    fn read(&self, path: &str) -> Option<String>;

    /// Every file path of this repository (for `include:local` wildcards); none by default.
    fn files(&self) -> Vec<String> {
        Vec::new()
    }

    /// The paths the push that started the pipeline changed; `None` when there is no such diff
    /// (not a push, a new branch, a tag), which makes every `changes` clause true.
    fn pushed_changes(&self) -> Option<Vec<String>> {
        None
    }

    /// The paths changed between `reference` and the pipeline's commit (`changes:compare_to`):
    /// `Ok(None)` when the source cannot tell, `Err` when `reference` names no commit.
    fn changed_since(&self, reference: &str) -> Result<Option<Vec<String>>, UnknownRef> {
        let _ = reference;
        Ok(None)
    }

    /// The text at `url` (`include:remote`), or GitLab's error for it.
    fn remote(&self, url: &str) -> Result<String, String> {
        Err(format!(
            "Remote file `{url}` could not be fetched: remote includes are not available here"
        ))
    }

    /// The tags of project `path` (for component versions); none when it cannot be read.
    fn project_tags(&self, path: &str) -> Vec<String> {
        let _ = path;
        Vec::new()
    }

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

/// A `compare_to` that names no commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownRef;

/// GitLab's answer for a project that does not exist or may not be read (indistinguishable).
pub fn project_not_found(path: &str) -> String {
    format!(
        "Project `{path}` not found or access denied! Make sure any includes in the pipeline configuration are correctly defined."
    )
}

/// One entry of `include`.
enum Include {
    /// `local:` (from the hash form: wildcards are expanded before variables, as GitLab does).
    Local(String, bool),
    Project {
        project: String,
        ref_name: Option<String>,
        files: Vec<String>,
    },
    /// `component:` (an address on this instance).
    Component(String),
    /// `remote:` (an http or https URL).
    Remote(String),
}

/// An entry with its `rules` and `inputs`.
struct Entry {
    include: Include,
    rules: Option<Yaml>,
    inputs: Mapping,
}

/// What `include` paths and `include:rules` are evaluated against: the pipeline's variables
/// (predefined, project and pipeline ones; not the YAML's own) and its situation.
pub struct IncludeContext<'a> {
    /// The variables.
    pub vars: &'a VarList,
    /// The names of masked variables (`expand_vars` refuses them).
    pub masked: &'a [String],
    /// The pipeline's source, ref and files.
    pub situation: &'a Situation<'a>,
}

/// Resolves `include` (`local` and `project`) with `source` giving files' text; without a
/// context (the lint API's merged YAML), paths are taken as written and rules admit all.
pub fn resolve_includes(
    mut config: Mapping,
    source: &dyn FileSource,
    context: Option<&IncludeContext>,
) -> Result<Mapping, String> {
    let mut count = 0;
    let values = match context {
        Some(c) => Values {
            expanded: c.vars.expanded().unwrap_or_default(),
            raw: c
                .vars
                .0
                .iter()
                .map(|v| (String::from(&*v.name), String::from(&*v.value)))
                .collect(),
            masked: c.masked.to_vec(),
        },
        None => Values::default(),
    };
    resolve_includes_in(&mut config, source, context, &values, ".gitlab-ci.yml", &mut count)?;
    Ok(config)
}

/// The variables includes see: expanded (for paths), and as defined with the masked ones'
/// names (for `expand_vars` in included files).
#[derive(Default)]
struct Values {
    expanded: Vec<(String, String)>,
    raw: Vec<(String, String)>,
    masked: Vec<String>,
}

fn resolve_includes_in(
    config: &mut Mapping,
    source: &dyn FileSource,
    context: Option<&IncludeContext>,
    values: &Values,
    current: &str,
    count: &mut usize,
) -> Result<(), String> {
    let Some(include) = config.remove("include") else {
        return Ok(());
    };
    let mut merged = Mapping::default();
    for entry in includes(&include, &values.expanded)? {
        if !rules_admit(entry.rules.as_ref(), context)? {
            continue;
        }
        match entry.include {
            Include::Local(path, from_hash) => {
                for path in local_paths(source, context, &path, from_hash, &values.expanded, current) {
                    let text = included_text(source, &path, count, |p| format!("Local file `{p}` does not exist!"))?;
                    let what = format!("Local file `{path}`");
                    let mut included = load_included(&text, &what, &path, &entry.inputs, values)?;
                    resolve_includes_in(&mut included, source, context, values, &path, count)?;
                    deep_merge(&mut merged, included);
                }
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
                    let what = format!("Project `{project}` file `{path}`");
                    let mut included = load_included(&text, &what, &path, &entry.inputs, values)?;
                    resolve_includes_in(&mut included, other.as_ref(), context, values, &path, count)?;
                    deep_merge(&mut merged, included);
                }
            }
            Include::Remote(url) => {
                counted(count)?;
                let file = url.split(['?', '#']).next().unwrap_or_default();
                if !(file.ends_with(".yml") || file.ends_with(".yaml")) {
                    return Err(format!("Remote file `{url}` does not have YAML extension!"));
                }
                let text = source.remote(&url)?;
                let what = format!("Remote file `{url}`");
                let mut included = load_included(&text, &what, &url, &entry.inputs, values)?;
                // Local includes inside a remote file are the pipeline's project's files.
                resolve_includes_in(&mut included, source, context, values, "", count)?;
                deep_merge(&mut merged, included);
            }
            Include::Component(address) => {
                let fqdn = values
                    .expanded
                    .iter()
                    .rev()
                    .find(|(k, _)| k == "CI_SERVER_FQDN")
                    .map_or("localhost", |(_, v)| v.as_str());
                let a = component::parse(&address, fqdn)?;
                let version = component::pick(&a.version, &source.project_tags(&a.project))
                    .ok_or_else(|| format!("Component '{address}' - no released version matches {}", a.version))?;
                let other = source.project(&a.project, Some(&version)).map_err(|_| {
                    format!("Component '{address}' - project does not exist or you don't have sufficient permissions")
                })?;
                let Some((path, text)) = component::files(&a.name)
                    .into_iter()
                    .find_map(|p| other.read(&p).map(|t| (p, t)))
                else {
                    return Err(format!("Component '{address}' - content not found"));
                };
                counted(count)?;
                let what = format!("Component '{address}' file `{path}`");
                let mut included = load_included(&text, &what, &path, &entry.inputs, values)?;
                resolve_includes_in(&mut included, other.as_ref(), context, values, &path, count)?;
                deep_merge(&mut merged, included);
            }
        }
    }
    deep_merge(&mut merged, std::mem::take(config));
    *config = merged;
    Ok(())
}

/// Whether `include:rules` admit an entry: no rules, or a first matching rule whose `when` is
/// not `never` (only `never` and `always` may be given).
fn rules_admit(rules: Option<&Yaml>, context: Option<&IncludeContext>) -> Result<bool, String> {
    let Some(rules) = rules else { return Ok(true) };
    let flat = policy::flatten_rules(rules);
    if flat.is_empty() {
        return Err("include:rules config can't be blank".into());
    }
    for rule in &flat {
        if let Yaml::Map(m) = rule
            && let Some(when) = m.get("when").and_then(variables::scalar_text)
            && when != "never"
            && when != "always"
        {
            return Err(format!("include:rule when unknown value: {when}"));
        }
    }
    let Some(context) = context else { return Ok(true) };
    let matched = policy::first_match(&flat, context.vars, context.situation, "include")?;
    Ok(matched.is_some_and(|m| m.when.as_deref() != Some("never")))
}

/// The files one `local` entry names: its path with variables expanded, or for a path with
/// `*` every file of the repository it matches (`*` within a folder, `**` across folders), in
/// path order, the including file itself left out; nothing when none matches.
fn local_paths(
    source: &dyn FileSource,
    context: Option<&IncludeContext>,
    path: &str,
    from_hash: bool,
    values: &[(String, String)],
    current: &str,
) -> Vec<String> {
    // The string form has its variables expanded before the wildcard; the hash form after it,
    // so a variable in a hash-form wildcard never matches (GitLab's order).
    let expand = |p: &str| super::job_settings::expand(p, values);
    let path = if from_hash { path.to_string() } else { expand(path) };
    let relative = path.trim_start_matches('/').to_string();
    if !relative.contains('*') {
        return vec![if from_hash { expand(&path) } else { path }];
    }
    let mut re = String::from("^");
    let mut chars = relative.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                re.push_str(".*?");
            }
            '*' => re.push_str("[^/]*?"),
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    re.push('$');
    let Ok(re) = regex::RegexBuilder::new(&re).size_limit(1 << 20).build() else {
        return Vec::new();
    };
    // The repository's listing; a source that keeps none (a folder on disk) is the
    // pipeline's own repository, whose listing the context carries.
    let mut listing = source.files();
    if listing.is_empty() {
        listing = context.map(|c| c.situation.files.to_vec()).unwrap_or_default();
    }
    let mut matched: Vec<String> = listing
        .into_iter()
        .filter(|f| re.is_match(f) && f != current.trim_start_matches('/'))
        .collect();
    matched.sort();
    matched
}

/// Counts an include against GitLab's limit.
fn counted(count: &mut usize) -> Result<(), String> {
    *count += 1;
    if *count > MAX_INCLUDES {
        return Err(format!("Maximum of {MAX_INCLUDES} nested includes are allowed!"));
    }
    Ok(())
}

/// Counts an include against the limit, checks its extension and reads it.
fn included_text(
    source: &dyn FileSource,
    path: &str,
    count: &mut usize,
    missing: impl Fn(&str) -> String,
) -> Result<String, String> {
    counted(count)?;
    let relative = path.trim_start_matches('/');
    if !(relative.ends_with(".yml") || relative.ends_with(".yaml")) {
        return Err(format!("Included file `{path}` does not have YAML extension!"));
    }
    source.read(relative).ok_or_else(|| missing(path))
}

/// An included file with its `inputs` interpolated; interpolation errors name the file as
/// GitLab does (`` `path`: message ``).
fn load_included(text: &str, what: &str, path: &str, args: &Mapping, values: &Values) -> Result<Mapping, String> {
    let vars = inputs::Vars {
        values: &values.raw,
        masked: &values.masked,
    };
    inputs::load(text, args, Origin::Yaml, vars).map_err(|e| match e {
        InputsError::Load(e) => format!("{what} does not have valid YAML syntax! Error: {e}"),
        InputsError::Inputs(message) => format!("`{path}`: {message}"),
    })
}

/// The entries of `include` with their `rules` and `inputs`; strings have their variables
/// expanded first.
fn includes(include: &Yaml, values: &[(String, String)]) -> Result<Vec<Entry>, String> {
    let text = |y: Option<&Yaml>| match y {
        Some(Yaml::Str(s)) => Some(s.clone()),
        _ => None,
    };
    let one = |item: &Yaml| -> Result<Entry, String> {
        let (rules, inputs) = match item {
            Yaml::Map(m) => (
                m.get("rules").cloned(),
                match m.get("inputs") {
                    None | Some(Yaml::Null) => Mapping::default(),
                    Some(Yaml::Map(inputs)) => inputs.clone(),
                    Some(_) => return Err("Include `inputs` must be a hash".to_string()),
                },
            ),
            _ => (None, Mapping::default()),
        };
        let entry = match item {
            Yaml::Str(s) => {
                let s = super::job_settings::expand(s, values);
                if s.starts_with("http://") || s.starts_with("https://") {
                    return Ok(Entry {
                        include: Include::Remote(s),
                        rules,
                        inputs,
                    });
                }
                Ok(Include::Local(s, false))
            }
            Yaml::Map(m) if m.get("component").is_some() => match m.get("component") {
                Some(Yaml::Str(address)) => Ok(Include::Component(super::job_settings::expand(address, values))),
                _ => Err("include:component should be a string".to_string()),
            },
            Yaml::Map(m) => match (m.get("local"), m.get("remote"), m.get("template"), m.get("project")) {
                (Some(Yaml::Str(s)), _, _, _) => Ok(Include::Local(s.clone(), true)),
                (_, Some(Yaml::Str(url)), _, _) => Ok(Include::Remote(super::job_settings::expand(url, values))),
                (_, Some(_), _, _) => Err("Included file `remote` needs to be a string".to_string()),
                (_, _, Some(template), _) => Err(format!(
                    "Template file `{}` is not supported: spur does not ship GitLab's CI/CD templates. Copy the template into the repository and include it with `include: local`.",
                    super::variables::scalar_text(template).unwrap_or_default()
                )),
                (_, _, _, Some(Yaml::Str(project))) => {
                    let files = match m.get("file") {
                        Some(Yaml::Str(f)) => vec![f.clone()],
                        Some(Yaml::Seq(items)) => items.iter().filter_map(|i| text(Some(i))).collect(),
                        _ => Vec::new(),
                    };
                    if files.is_empty() {
                        return Err("Include `project` needs a `file`".to_string());
                    }
                    let expand = |t: &str| super::job_settings::expand(t, values);
                    Ok(Include::Project {
                        project: expand(project.trim_matches('/')),
                        ref_name: text(m.get("ref")).map(|r| expand(&r)),
                        files: files.iter().map(|f| expand(f)).collect(),
                    })
                }
                _ => Err("Include config must be a string or a hash with a local key".to_string()),
            },
            _ => Err("Include config must be a string or a list".to_string()),
        }?;
        Ok(Entry {
            include: entry,
            rules,
            inputs,
        })
    };
    match include {
        Yaml::Seq(items) => items.iter().map(one).collect(),
        other => Ok(vec![one(other)?]),
    }
}

/// Resolves every `extends` in the configuration.
pub fn resolve_extends(config: Mapping) -> Result<Mapping, String> {
    if !config
        .iter()
        .any(|(_, v)| matches!(v, Yaml::Map(m) if m.get("extends").is_some()))
    {
        return Ok(config);
    }
    let config = &config;
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
pub fn resolve_references(root: Mapping) -> Result<Mapping, String> {
    fn tagged(y: &Yaml) -> bool {
        match y {
            Yaml::Tagged(..) => true,
            Yaml::Seq(items) => items.iter().any(tagged),
            Yaml::Map(m) => m.iter().any(|(_, v)| tagged(v)),
            _ => false,
        }
    }
    if !root.iter().any(|(_, v)| tagged(v)) {
        return Ok(root);
    }
    let root = &root;
    let mut out = Mapping::default();
    for (k, v) in root.iter() {
        out.push_new(k.clone(), resolve_value(root, v, &mut Vec::new())?);
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
                out.push_new(k.clone(), resolve_value(root, v, seen)?);
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
