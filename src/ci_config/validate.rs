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
        if let Some(n) = parallel_count(job)
            && !(2..=MAX_PARALLEL).contains(&n)
        {
            return Err(lower(format!(
                "{location}:parallel config must be between 2 and {MAX_PARALLEL}"
            )));
        }
        let stage = job_stage(job);
        if !stages.contains(&stage) {
            return Err(format!(
                "{name} job: chosen stage {stage} does not exist; available stages are {}",
                stages.join(", ")
            ));
        }
        check_static_needs(name, job, jobs, stages)?;
    }
    Ok(())
}

pub(super) fn check_if(y: Option<&Yaml>, location: &str) -> Result<(), String> {
    match y {
        None => Ok(()),
        Some(Yaml::Str(text)) => Expression::parse(text)
            .map(|_| ())
            .map_err(|_| format!("{location} if invalid expression syntax")),
        Some(_) => Err(format!("{location} if should be a string")),
    }
}

/// `(name, optional)` for each entry of a `needs:` value.
pub(super) fn needs_entries(y: &Yaml) -> Vec<(String, bool)> {
    let Yaml::Seq(items) = y else { return Vec::new() };
    items
        .iter()
        .filter_map(|i| match i {
            Yaml::Map(m) => m
                .get("job")
                .and_then(variables::scalar_text)
                .map(|n| (n, matches!(m.get("optional"), Some(Yaml::Bool(true))))),
            other => variables::scalar_text(other).map(|n| (n, false)),
        })
        .collect()
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
            None if optional => {}
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
