//! Needs across the planned jobs: `$[[ matrix.NAME ]]` in needs, optional needs, the check
//! that every job-level need was created, and the edges between created jobs (a need on a
//! parallel job is all its instances).

use super::plan::PlannedJob;
use super::validate::needs_entries;
use super::variables::VarList;
use super::yaml::Mapping;

/// Fills `$[[ matrix.NAME ]]` in a need with the needing instance's matrix value.
pub(super) fn matrix_expressions(text: &str, instance_vars: &VarList) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("$[[") {
        out.push_str(&rest[..i]);
        let Some(end) = rest[i..].find("]]") else {
            rest = &rest[i..];
            break;
        };
        let inner = rest[i + 3..i + end].trim();
        match inner.strip_prefix("matrix.").and_then(|k| instance_vars.get(k.trim())) {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[i..i + end + 2]),
        }
        rest = &rest[i + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Marks an optional need until `resolve_needs` runs (job names cannot start with a NUL).
pub(super) const OPTIONAL_MARK: &str = "\0";

/// Turns needs into edges between created jobs: a need on a parallel job becomes all its
/// instances; an optional need on an absent job is dropped.
pub(super) fn resolve_needs(planned: &mut [PlannedJob]) {
    let names: Vec<String> = planned.iter().map(|j| j.name.clone()).collect();
    for job in planned.iter_mut() {
        let Some(needs) = job.needs.take() else { continue };
        let mut resolved = Vec::new();
        for need in needs {
            let (name, optional) = match need.strip_prefix(OPTIONAL_MARK) {
                Some(n) => (n.to_string(), true),
                None => (need, false),
            };
            let matching: Vec<&String> = names
                .iter()
                .filter(|n| **n == name || is_instance_of(n, &name))
                .collect();
            if matching.is_empty() && !optional {
                resolved.push(name);
            }
            resolved.extend(matching.into_iter().cloned());
        }
        job.needs = Some(resolved);
    }
}

/// Whether `job` is an instance (`name 1/3`, `name: [a, b]`) of the parallel job `name`.
fn is_instance_of(job: &str, name: &str) -> bool {
    job.strip_prefix(name).is_some_and(|rest| {
        rest.strip_prefix(' ')
            .is_some_and(|r| r.contains('/') && r.chars().next().is_some_and(|c| c.is_ascii_digit()))
            || rest.starts_with(": [")
    })
}

/// A job's job-level non-optional needs must all be in the pipeline (GitLab checks the
/// job-level list even when a rule replaced it).
pub(super) fn check_needs(jobs: &[(String, Mapping)], planned: &[PlannedJob]) -> Result<(), String> {
    let defs: std::collections::HashMap<&str, &Mapping> = jobs.iter().map(|(n, j)| (n.as_str(), j)).collect();
    let names: std::collections::HashSet<&str> = planned.iter().map(|p| p.name.as_str()).collect();
    for job in planned {
        let def = defs
            .get(job.name.as_str())
            .copied()
            .or_else(|| jobs.iter().find(|(n, _)| is_instance_of(&job.name, n)).map(|(_, j)| j));
        let Some(def) = def else {
            continue;
        };
        let Some(needs) = def.get("needs") else { continue };
        // The job's own variables, for `$[[ matrix.NAME ]]` in its needs: built only when one
        // has such an expression.
        let mut own: Option<VarList> = None;
        for (need, optional) in needs_entries(needs) {
            let need = if need.contains("$[[") {
                let own = own.get_or_insert_with(|| {
                    let mut list = VarList::default();
                    for (k, v) in &job.variables {
                        list.set(k, v, false);
                    }
                    list
                });
                matrix_expressions(&need, own)
            } else {
                need
            };
            let present = names.contains(need.as_str()) || planned.iter().any(|p| is_instance_of(&p.name, &need));
            if !present && !optional {
                return Err(format!(
                    "'{}' job needs '{need}' job, but '{need}' does not exist in the pipeline. This might be because of the only, except, or rules keywords. To need a job that sometimes does not exist in the pipeline, use needs:optional.",
                    job.name
                ));
            }
        }
    }
    Ok(())
}
