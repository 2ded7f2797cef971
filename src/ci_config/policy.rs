//! Deciding whether a job (or the whole pipeline) is included: job `rules`, `only`/`except`
//! with GitLab's refs keywords and the implicit `only: [branches, tags]`, and `workflow:rules`.

use super::variables::{self, VarList};
use super::yaml::Yaml;
use crate::rules::Expression;
use regex::Regex;

/// What the decision depends on besides variables.
pub struct Situation<'a> {
    /// The paths the push changed (`None`: no push diff, `changes` holds).
    pub pushed: Option<&'a [String]>,
    /// The repository, for `changes:compare_to`.
    pub repo: &'a dyn super::compose::FileSource,
    /// `CI_PIPELINE_SOURCE`.
    pub source: &'a str,
    /// The ref's short name.
    pub ref_name: &'a str,
    /// Whether the ref is a tag.
    pub ref_is_tag: bool,
    /// `namespace/project`.
    pub project_path: &'a str,
    /// Every file path in the repository at the pipeline's commit.
    pub files: &'a [String],
}

/// The matched rule of a `rules:` list.
#[derive(Debug, Clone, Default)]
pub struct RuleMatch {
    /// The rule's `when`, if set.
    pub when: Option<String>,
    /// The rule's `allow_failure`, if set.
    pub allow_failure: Option<bool>,
    /// The rule's `variables`.
    pub variables: VarList,
    /// The rule's `needs`, replacing the job's, if set.
    pub needs: Option<Yaml>,
    /// The rule's `interruptible`, if set.
    pub interruptible: Option<bool>,
}

/// Flattens nested rule lists (from `!reference` or anchors), up to 10 levels.
pub fn flatten_rules(y: &Yaml) -> Vec<Yaml> {
    fn walk(y: &Yaml, depth: usize, out: &mut Vec<Yaml>) {
        match y {
            Yaml::Seq(items) if depth < 10 => items.iter().for_each(|i| walk(i, depth + 1, out)),
            other => out.push(other.clone()),
        }
    }
    let mut out = Vec::new();
    if let Yaml::Seq(items) = y {
        items.iter().for_each(|i| walk(i, 1, &mut out));
    }
    out
}

/// The first rule whose clauses all hold, if any. Expressions were validated beforehand.
pub fn first_match(
    rules: &[Yaml],
    vars: &VarList,
    situation: &Situation<'_>,
    location: &str,
) -> Result<Option<RuleMatch>, String> {
    for rule in rules {
        let Yaml::Map(rule) = rule else {
            return Err(format!("{location}:rules:rule config should be a hash"));
        };
        let if_ok = match rule.get("if") {
            None => true,
            Some(Yaml::Str(text)) => expression_holds(text, vars),
            Some(_) => return Err(format!("{location}:rules:rule if should be a string")),
        };
        let exists_ok = rule.get("exists").is_none_or(|e| exists(e, vars, situation.files));
        let changes_ok = match rule.get("changes") {
            Some(spec) if if_ok && exists_ok => changes(spec, vars, situation)?,
            _ => true,
        };
        if if_ok && exists_ok && changes_ok {
            return Ok(Some(RuleMatch {
                when: rule.get("when").and_then(variables::scalar_text),
                allow_failure: rule.get("allow_failure").and_then(lenient_bool),
                variables: variables::from_yaml(rule.get("variables"), location)?,
                needs: rule.get("needs").cloned(),
                interruptible: rule.get("interruptible").and_then(lenient_bool),
            }));
        }
    }
    Ok(None)
}

fn expression_holds(text: &str, vars: &VarList) -> bool {
    Expression::parse_cached(text).is_ok_and(|e| e.matches(&|name| vars.get(name).map(str::to_string)))
}

/// A boolean as Psych reads it (`yes`/`on`/`true`, `no`/`off`/`false`).
pub fn lenient_bool(y: &Yaml) -> Option<bool> {
    match y {
        Yaml::Bool(b) => Some(*b),
        Yaml::Str(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" => Some(true),
            "false" | "no" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn exists(spec: &Yaml, vars: &VarList, files: &[String]) -> bool {
    let patterns: Vec<String> = match spec {
        Yaml::Str(s) => vec![s.clone()],
        Yaml::Seq(items) => items.iter().filter_map(variables::scalar_text).collect(),
        Yaml::Map(m) => m.get("paths").map(exists_paths).unwrap_or_default(),
        _ => Vec::new(),
    };
    patterns.iter().any(|p| {
        let mut list = vars.clone();
        list.set("__SPUR_PATTERN__", p, false);
        let expanded = list
            .expanded()
            .ok()
            .and_then(|e| e.into_iter().find(|(n, _)| n == "__SPUR_PATTERN__"))
            .map(|(_, v)| v);
        let pattern = expanded.unwrap_or_else(|| p.clone());
        glob(&pattern).is_some_and(|re| files.iter().any(|f| re.is_match(f)))
    })
}

/// GitLab's bound: past this many glob comparisons a `changes` clause is taken as true.
const MAX_CHANGES_COMPARISONS: usize = 50_000;

/// A `changes` clause (`Clause::Changes`): true without a diff (not a push, a new branch, a
/// tag); otherwise whether a changed path matches a glob. `compare_to` diffs against a ref.
fn changes(spec: &Yaml, vars: &VarList, situation: &Situation<'_>) -> Result<bool, String> {
    let (globs, compare_to) = match spec {
        Yaml::Map(m) => (
            m.get("paths").map(exists_paths).unwrap_or_default(),
            m.get("compare_to").and_then(variables::scalar_text),
        ),
        other => (exists_paths(other), None),
    };
    let values = vars.expanded().unwrap_or_default();
    let expand = |t: &str| super::job_settings::expand(t, &values);
    let modified: Option<Vec<String>> = match compare_to {
        Some(reference) => situation
            .repo
            .changed_since(&expand(&reference))
            .map_err(|_| "rules:changes:compare_to is not a valid ref".to_string())?,
        None => situation.pushed.map(<[String]>::to_vec),
    };
    let Some(modified) = modified else { return Ok(true) };
    if modified.is_empty() {
        return Ok(false);
    }
    let mut globs: Vec<String> = globs.iter().map(|g| expand(g)).collect();
    globs.dedup();
    if globs.is_empty() {
        return Ok(false);
    }
    if modified.len().saturating_mul(globs.len()) > MAX_CHANGES_COMPARISONS {
        return Ok(true);
    }
    let compiled: Vec<Regex> = globs.iter().filter_map(|g| glob(g)).collect();
    Ok(modified.iter().any(|path| compiled.iter().any(|re| re.is_match(path))))
}

fn exists_paths(p: &Yaml) -> Vec<String> {
    match p {
        Yaml::Seq(items) => items.iter().filter_map(variables::scalar_text).collect(),
        other => variables::scalar_text(other).into_iter().collect(),
    }
}

/// A glob as Ruby's `File.fnmatch` with `FNM_PATHNAME | FNM_DOTMATCH | FNM_EXTGLOB` (what
/// GitLab uses for `rules:exists` and `rules:changes`): `*` and `?` stay within a path segment
/// (dot files included), `**/` spans directories (a `**` not before `/` is a `*`), `[abc]`,
/// `[a-z]`, `[^x]` and `[!x]` are classes, `{a,b}` alternatives (nested too), `\x` a literal.
pub fn glob(pattern: &str) -> Option<Regex> {
    let pattern = pattern.trim_start_matches('/');
    let mut re = String::from("^");
    let mut braces = 0usize;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                    re.push_str("(?:[^/]*/)*");
                } else {
                    re.push_str("[^/]*");
                }
            }
            '*' => re.push_str("[^/]*"),
            '?' => re.push_str("[^/]"),
            '\\' => {
                let next = chars.next()?;
                re.push_str(&regex::escape(&next.to_string()));
            }
            '[' => {
                let mut class = String::new();
                let negated = matches!(chars.peek(), Some('^' | '!'));
                if negated {
                    chars.next();
                }
                let mut closed = false;
                let mut first = true;
                while let Some(k) = chars.next() {
                    match k {
                        ']' if !first => {
                            closed = true;
                            break;
                        }
                        '\\' => class.push_str(&regex::escape(&chars.next()?.to_string())),
                        '-' if !first && chars.peek().is_some_and(|n| *n != ']') => class.push('-'),
                        other => class.push_str(&regex::escape(&other.to_string())),
                    }
                    first = false;
                }
                if !closed || class.is_empty() {
                    return None;
                }
                if negated {
                    re.push_str(&format!("[^/{class}]"));
                } else {
                    re.push_str(&format!("(?:[{class}])"));
                }
            }
            '{' => {
                braces += 1;
                re.push_str("(?:");
            }
            ',' if braces > 0 => re.push('|'),
            '}' if braces > 0 => {
                braces -= 1;
                re.push(')');
            }
            other => re.push_str(&regex::escape(&other.to_string())),
        }
    }
    if braces > 0 {
        return None;
    }
    re.push('$');
    regex::RegexBuilder::new(&re).size_limit(1 << 20).build().ok()
}

/// Whether `only`/`except` let the job in. `only` is `None` when absent; `implicit_only` adds
/// GitLab's default `only: [branches, tags]` (no `rules`, no `workflow:rules`).
pub fn only_except_allows(
    only: Option<&Yaml>,
    except: Option<&Yaml>,
    implicit_only: bool,
    vars: &VarList,
    situation: &Situation<'_>,
) -> bool {
    let default_refs = Yaml::Seq(vec![Yaml::Str("branches".into()), Yaml::Str("tags".into())]);
    let only_spec = match (only, implicit_only) {
        (Some(Yaml::Map(m)), true) if m.get("refs").is_none() => {
            let mut m = m.clone();
            m.insert("refs".into(), default_refs);
            Some(Yaml::Map(m))
        }
        (Some(o), _) => Some(o.clone()),
        (None, true) => Some(default_refs),
        (None, false) => None,
    };
    let only_ok = only_spec
        .as_ref()
        .is_none_or(|spec| spec_satisfied(spec, vars, situation, true));
    let blocked = except.is_some_and(|spec| spec_satisfied(spec, vars, situation, false));
    only_ok && !blocked
}

/// `all`: every present part must hold (`only`); otherwise any part suffices (`except`).
fn spec_satisfied(spec: &Yaml, vars: &VarList, situation: &Situation<'_>, all: bool) -> bool {
    let (refs, exprs, changed) = match spec {
        Yaml::Seq(_) | Yaml::Str(_) => (Some(spec), None, None),
        Yaml::Map(m) => (m.get("refs"), m.get("variables"), m.get("changes")),
        _ => (None, None, None),
    };
    let mut parts = Vec::new();
    if let Some(spec) = changed {
        // only/except:changes: a bad compare_to matches nothing.
        parts.push(changes(spec, vars, situation).unwrap_or(false));
    }
    if let Some(refs) = refs {
        let list: Vec<String> = match refs {
            Yaml::Seq(items) => items.iter().filter_map(variables::scalar_text).collect(),
            other => variables::scalar_text(other).into_iter().collect(),
        };
        parts.push(list.iter().any(|p| ref_pattern_matches(p, situation)));
    }
    if let Some(Yaml::Seq(items)) = exprs {
        parts.push(
            items
                .iter()
                .any(|e| matches!(e, Yaml::Str(t) if expression_holds(t, vars))),
        );
    }
    if parts.is_empty() {
        return all;
    }
    if all {
        parts.iter().all(|p| *p)
    } else {
        parts.iter().any(|p| *p)
    }
}

fn ref_pattern_matches(pattern: &str, s: &Situation<'_>) -> bool {
    let (pattern, project) = match pattern.split_once('@') {
        Some((p, proj)) => (p, Some(proj)),
        None => (pattern, None),
    };
    if project.is_some_and(|p| p != s.project_path) {
        return false;
    }
    let source = s.source.trim_end_matches("_event");
    let plural = match source {
        "push" => "pushes".to_string(),
        other => format!("{other}s"),
    };
    // Merge-request pipelines run for the merge request: neither a branch nor a tag.
    let for_a_ref = !matches!(source, "merge_request" | "external_pull_request");
    match pattern {
        "tags" => return s.ref_is_tag && for_a_ref,
        "branches" => return !s.ref_is_tag && for_a_ref,
        p if p == source || p == plural => return true,
        _ => {}
    }
    if let Some(body) = pattern.strip_prefix('/')
        && let Some(end) = body.rfind('/')
    {
        let (re, flags) = (&body[..end], &body[end + 1..]);
        let source = if flags.is_empty() {
            re.to_string()
        } else {
            format!("(?{flags}){re}")
        };
        return Regex::new(&source).is_ok_and(|r| r.is_match(s.ref_name));
    }
    pattern == s.ref_name
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let m = |p: &str, f: &str| glob(p).is_some_and(|r| r.is_match(f));
        assert!(m("Dockerfile", "Dockerfile"));
        assert!(m("*.md", "README.md"));
        assert!(!m("*.md", "docs/README.md"));
        assert!(m("docs/**/*.md", "docs/a/b/c.md"));
        assert!(m("**/*.md", "README.md"));
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "a/c"));
        // FNM_EXTGLOB braces, classes, negated classes, dot files, escapes.
        assert!(m("*.{rb,py}", "x.py") && m("*.{rb,py}", "x.rb") && !m("*.{rb,py}", "x.js"));
        assert!(m("{a,b{c,d}}.txt", "bd.txt") && !m("{a,b{c,d}}.txt", "be.txt"));
        assert!(m("file[0-9].txt", "file7.txt") && !m("file[0-9].txt", "filex.txt"));
        assert!(m("[^a]*.md", "b.md") && !m("[^a]*.md", "a.md") && m("[!a]*.md", "c.md"));
        assert!(m("*", ".hidden"));
        assert!(m("\\*.md", "*.md") && !m("\\*.md", "x.md"));
        assert!(!m("**.md", "docs/a.md"), "`**` not before `/` is a `*`");
        assert!(m("docs/**/x", "docs/x"));
        assert!(glob("[abc").is_none() && glob("{a,b").is_none());
    }
}
