//! Checks of a composed configuration before planning, with GitLab's error texts: unknown
//! global and job keys, `when` values, stages, `rules:if` expressions, `needs` that name no job.

use super::parallel::{MAX_PARALLEL, parallel_count};
use super::plan::{job_stage, workflow_rules};
use super::yaml::{Mapping, Yaml};
use super::{policy, variables};
use crate::rules::Expression;

const JOB_KEYS: [&str; 38] = [
    "script",
    "before_script",
    "after_script",
    "stage",
    "variables",
    "rules",
    "only",
    "except",
    "when",
    "allow_failure",
    "needs",
    "dependencies",
    "extends",
    "inherit",
    "environment",
    "resource_group",
    "interruptible",
    "image",
    "services",
    "cache",
    "artifacts",
    "tags",
    "retry",
    "timeout",
    "parallel",
    "coverage",
    "release",
    "start_in",
    "hooks",
    "id_tokens",
    "inputs",
    "manual_confirmation",
    "pages",
    "publish",
    "run",
    "trigger",
    "description",
    "identity",
];

pub(super) const GLOBAL_KEYS: [&str; 10] = [
    "default",
    "include",
    "stages",
    "variables",
    "workflow",
    "before_script",
    "after_script",
    "image",
    "services",
    "cache",
];

const JOB_WHEN: [&str; 5] = ["on_success", "on_failure", "always", "manual", "delayed"];

const RULE_WHEN: [&str; 6] = ["on_success", "on_failure", "always", "never", "manual", "delayed"];

/// Static validation: keys, `when`, expression syntax, stages, `needs` targets.
pub(super) fn validate(config: &Mapping, jobs: &[(String, Mapping)], stages: &[String]) -> Result<(), String> {
    if let Some(rules) = workflow_rules(config) {
        for rule in policy::flatten_rules(rules) {
            let Yaml::Map(rule) = rule else { continue };
            check_if(rule.get("if"), "workflow:rules:rule")?;
            if let Some(when) = rule.get("when").and_then(variables::scalar_text)
                && when != "always"
                && when != "never"
            {
                return Err("workflow:rules:rule when should be one of: always, never".into());
            }
        }
    }
    for (name, job) in jobs {
        let location = format!("jobs:{name}");
        let lower = |s: String| s.to_lowercase();
        let unknown: Vec<&str> = job
            .iter()
            .map(|(k, _)| k.as_str())
            .filter(|k| !JOB_KEYS.contains(k))
            .collect();
        if !unknown.is_empty() {
            return Err(lower(format!(
                "{location} config contains unknown keys: {}",
                unknown.join(", ")
            )));
        }
        if job.get("script").is_some() && job.get("trigger").is_some() {
            return Err(lower(format!(
                "{location} config these keys cannot be used together: script, trigger"
            )));
        }
        if let Some(when) = job.get("when").and_then(variables::scalar_text)
            && !JOB_WHEN.contains(&when.as_str())
        {
            return Err(lower(format!(
                "{location} when should be one of: {}",
                JOB_WHEN.join(", ")
            )));
        }
        if let Some(rules) = job.get("rules") {
            let used: Vec<&str> = ["only", "except"]
                .into_iter()
                .filter(|k| job.get(k).is_some())
                .collect();
            if !used.is_empty() {
                return Err(lower(format!(
                    "{location} config key may not be used with `rules`: {}",
                    used.join(", ")
                )));
            }
            let flat = policy::flatten_rules(rules);
            if flat.is_empty() {
                return Err(lower(format!("{location}:rules config can't be blank")));
            }
            for rule in flat {
                let Yaml::Map(rule) = rule else {
                    return Err(lower(format!("{location}:rules:rule config should be a hash")));
                };
                check_if(rule.get("if"), &format!("{location}:rules:rule")).map_err(lower)?;
                if let Some(when) = rule.get("when").and_then(variables::scalar_text)
                    && !RULE_WHEN.contains(&when.as_str())
                {
                    return Err(lower(format!(
                        "{location}:rules:rule when should be one of: {}",
                        RULE_WHEN.join(", ")
                    )));
                }
            }
        }
        for key in ["only", "except"] {
            if let Some(Yaml::Map(spec)) = job.get(key)
                && let Some(Yaml::Seq(exprs)) = spec.get("variables")
            {
                for e in exprs {
                    check_if(Some(e), &format!("{location}:{key}"))
                        .map_err(|_| lower(format!("{location}:{key} variables invalid expression syntax")))?;
                }
            }
        }
        match (job.get("parallel"), parallel_count(job)) {
            (Some(Yaml::Int(n)), _) if *n < 1 => {
                return Err(lower(format!(
                    "{location}:parallel config must be greater than or equal to 1"
                )));
            }
            (Some(Yaml::Int(_)), Some(n)) if n > MAX_PARALLEL => {
                return Err(lower(format!(
                    "{location}:parallel config must be less than or equal to {MAX_PARALLEL}"
                )));
            }
            (Some(Yaml::Map(_)), Some(n)) if n > MAX_PARALLEL => {
                return Err(lower(format!(
                    "{location}:parallel:matrix config generates too many jobs (maximum is {MAX_PARALLEL})"
                )));
            }
            (Some(Yaml::Map(m)), _) if m.get("matrix").is_none() => {
                return Err(lower(format!(
                    "{location}:parallel config missing required keys: matrix"
                )));
            }
            (Some(Yaml::Int(_) | Yaml::Map(_)) | None, _) => {}
            (Some(_), _) => return Err(lower(format!("{location}:parallel should be an integer or a hash"))),
        }
        if let Some(needs) = job.get("needs")
            && !matches!(needs, Yaml::Seq(_) | Yaml::Map(_))
        {
            return Err(lower(format!("{location}:needs config can only be a hash or an array")));
        }
        if job.get("trigger").is_none() && matches!(job.get("script"), Some(Yaml::Seq(items)) if items.is_empty()) {
            return Err(lower(format!("{location} script can't be blank")));
        }
        if let (Some(dependencies), Some(needs)) = (job.get("dependencies"), job.get("needs")) {
            let needed: Vec<String> = needs_entries(needs).into_iter().map(|(n, _)| n).collect();
            let missing: Vec<String> = dependency_names(dependencies)
                .into_iter()
                .filter(|d| !needed.contains(d))
                .collect();
            if !needed.is_empty() && !missing.is_empty() {
                return Err(lower(format!(
                    "{location} dependencies the {} should be part of needs",
                    missing.join(", ")
                )));
            }
        }
    }
    // The logical checks run once the configuration is well-formed, as GitLab's do.
    for (name, job) in jobs {
        let stage = job_stage(job);
        if !stages.contains(&stage) {
            return Err(format!(
                "{name} job: chosen stage {stage} does not exist; available stages are {}",
                stages.join(", ")
            ));
        }
        check_dependencies(name, job, jobs, stages)?;
        check_static_needs(name, job, jobs, stages)?;
    }
    check_circular_needs(jobs)
}

/// The job names a `dependencies:` value lists.
pub(super) fn dependency_names(y: &Yaml) -> Vec<String> {
    match y {
        Yaml::Seq(items) => items.iter().filter_map(variables::scalar_text).collect(),
        _ => Vec::new(),
    }
}

/// Every `dependencies:` entry names a job of the current or an earlier stage.
fn check_dependencies(name: &str, job: &Mapping, jobs: &[(String, Mapping)], stages: &[String]) -> Result<(), String> {
    let Some(dependencies) = job.get("dependencies") else {
        return Ok(());
    };
    let position = |stage: &str| stages.iter().position(|s| s == stage);
    let own = position(&job_stage(job));
    for dependency in dependency_names(dependencies) {
        match jobs.iter().find(|(n, _)| *n == dependency) {
            None => return Err(format!("{name} job: undefined dependency: {dependency}")),
            Some((_, target)) if position(&job_stage(target)) > own => {
                return Err(format!(
                    "{name} job: dependency {dependency} is not defined in current or prior stages"
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// Refuses `needs` that go round in a circle, with GitLab's message (Ruby's TSort wording:
/// `self-dependency: a`, or the cycle from its first job in file order along the needs).
fn check_circular_needs(jobs: &[(String, Mapping)]) -> Result<(), String> {
    let by_name: std::collections::HashMap<&str, &Mapping> = jobs.iter().map(|(n, j)| (n.as_str(), j)).collect();
    let needs_of = |name: &str| -> Vec<String> {
        by_name
            .get(name)
            .and_then(|j| j.get("needs"))
            .map(|n| needs_entries(n).into_iter().map(|(n, _)| n).collect())
            .unwrap_or_default()
    };
    for (name, _) in jobs {
        if needs_of(name).contains(name) {
            return Err(format!(
                "The pipeline has circular dependencies: self-dependency: {name}"
            ));
        }
    }
    // Depth-first search in file order; the first back edge closes a cycle.
    fn visit(
        node: &str,
        needs_of: &dyn Fn(&str) -> Vec<String>,
        path: &mut Vec<String>,
        done: &mut std::collections::HashSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == node) {
            return Some(path[i..].to_vec());
        }
        if done.contains(node) || path.len() > 10_000 {
            return None;
        }
        path.push(node.to_string());
        for next in needs_of(node) {
            if let Some(cycle) = visit(&next, needs_of, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = std::collections::HashSet::new();
    for (name, _) in jobs {
        if let Some(cycle) = visit(name, &needs_of, &mut Vec::new(), &mut done) {
            // From the cycle's first job in file order, along its needs.
            let first = jobs
                .iter()
                .map(|(n, _)| n)
                .find(|n| cycle.contains(n))
                .cloned()
                .unwrap_or_default();
            let start = cycle.iter().position(|n| *n == first).unwrap_or(0);
            let ordered: Vec<String> = cycle[start..]
                .iter()
                .chain(&cycle[..start])
                .map(|n| format!("{n:?}"))
                .collect();
            return Err(format!(
                "The pipeline has circular dependencies: topological sort failed: [{}]",
                ordered.join(", ")
            ));
        }
    }
    Ok(())
}

pub(super) fn check_if(y: Option<&Yaml>, location: &str) -> Result<(), String> {
    match y {
        None => Ok(()),
        Some(Yaml::Str(text)) => Expression::parse_cached(text)
            .map(|_| ())
            .map_err(|_| format!("{location} if invalid expression syntax")),
        Some(_) => Err(format!("{location} if should be a string")),
    }
}

/// `(name, optional)` for each entry of a `needs:` value.
/// Nested arrays (from `!reference`) are flattened, as GitLab does.
pub(super) fn needs_entries(y: &Yaml) -> Vec<(String, bool)> {
    let Yaml::Seq(items) = y else { return Vec::new() };
    let mut out = Vec::new();
    let mut stack: Vec<&Yaml> = items.iter().rev().collect();
    while let Some(item) = stack.pop() {
        match item {
            Yaml::Seq(inner) => stack.extend(inner.iter().rev()),
            // A cross-pipeline (`pipeline:`) or cross-project (`project:`) artifact need is
            // no edge inside this pipeline.
            Yaml::Map(m) if m.get("pipeline").is_some() || m.get("project").is_some() => {}
            Yaml::Map(m) => {
                let Some(job) = m.get("job").and_then(variables::scalar_text) else {
                    continue;
                };
                let optional = matches!(m.get("optional"), Some(Yaml::Bool(true)));
                // `parallel:matrix` picks instances of a matrix job: `job: [v1, v2]`.
                match m.get("parallel").and_then(|p| match p {
                    Yaml::Map(p) => p.get("matrix"),
                    _ => None,
                }) {
                    Some(Yaml::Seq(rows)) => out.extend(
                        super::parallel::matrix_instances(&job, rows)
                            .into_iter()
                            .map(|(name, _)| (name, optional)),
                    ),
                    _ => out.push((job, optional)),
                }
            }
            other => out.extend(variables::scalar_text(other).map(|n| (n, false))),
        }
    }
    out
}

pub(super) fn check_static_needs(
    name: &str,
    job: &Mapping,
    jobs: &[(String, Mapping)],
    stages: &[String],
) -> Result<(), String> {
    let Some(needs) = job.get("needs") else { return Ok(()) };
    let position = |stage: &str| stages.iter().position(|s| s == stage);
    let own = position(&job_stage(job));
    let mut seen = Vec::new();
    for (need, optional) in needs_entries(needs) {
        if seen.contains(&need) {
            return Err(format!("{name} has the following needs duplicated: {need}."));
        }
        seen.push(need.clone());
        match jobs.iter().find(|(n, _)| *n == need) {
            None if optional || matrix_instance_exists(&need, jobs) => {}
            None => return Err(format!("{name} job: undefined need: {need}")),
            Some((_, target)) => {
                if position(&job_stage(target)) > own {
                    return Err(format!(
                        "{name} job: need {need} is not defined in current or prior stages"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Whether `need` names an instance of a matrix job (`job: [a, b]`), or holds a
/// `$[[ matrix.NAME ]]` that each instance of the needing job fills in later.
fn matrix_instance_exists(need: &str, jobs: &[(String, Mapping)]) -> bool {
    if need.contains("$[[") {
        return true;
    }
    jobs.iter().any(|(base, def)| {
        need.starts_with(base.as_str())
            && super::parallel::parallel_instances(base, def)
                .iter()
                .any(|(instance, _)| instance == need)
    })
}
