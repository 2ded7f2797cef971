//! Runs the spec's pipeline-creation cases (`tests/data/ci-cases`, copied from GitLab's docs
//! and specs): each folder is a repository at the pipeline's commit with an `expected.json`.
//! `KNOWN_FAILING` lists the cases the planner does not get right yet; the test fails if any
//! other case fails, or if a listed case starts passing (so the list stays true).

use super::plan::{Context, PlanError, PlannedJob, plan};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Cases the planner does not pass yet, each with the reason.
const KNOWN_FAILING: &[(&str, &str)] = &[];

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/ci-cases")
}

fn files_under(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(root, &path, out);
        } else if let Ok(rel) = path.strip_prefix(root) {
            let rel = rel.to_string_lossy().to_string();
            if rel != "expected.json" && !rel.starts_with("_projects/") {
                out.push(rel);
            }
        }
    }
}

fn strings(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

/// A case's repository: its folder, the push's changed files (`changed_files`) and the files
/// changed since other refs (`compare_to: {"ref": [paths]}`).
struct CaseSource {
    dir: PathBuf,
    pushed: Option<Vec<String>>,
    compare_to: Value,
}

fn paths(a: &[Value]) -> Vec<String> {
    a.iter().filter_map(Value::as_str).map(String::from).collect()
}

impl super::compose::FileSource for CaseSource {
    fn read(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join(path)).ok()
    }

    fn pushed_changes(&self) -> Option<Vec<String>> {
        self.pushed.clone()
    }

    fn project(&self, path: &str, _ref_name: Option<&str>) -> Result<Box<dyn super::compose::FileSource + '_>, String> {
        let dir = self.dir.join("_projects").join(path);
        if !dir.is_dir() || path.split('/').any(|p| p == ".." || p.is_empty()) {
            return Err(super::compose::project_not_found(path));
        }
        Ok(Box::new(CaseSource {
            dir,
            pushed: None,
            compare_to: Value::Null,
        }))
    }

    fn changed_since(&self, reference: &str) -> Result<Option<Vec<String>>, super::compose::UnknownRef> {
        self.compare_to[reference]
            .as_array()
            .map(|a| Some(paths(a)))
            .ok_or(super::compose::UnknownRef)
    }
}

/// Checks one case; returns what differs.
fn check(dir: &Path) -> Result<(), String> {
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
    let ctx = Context {
        source: expected["source"].as_str().unwrap_or("push").into(),
        ref_name: expected["ref"].as_str().unwrap_or("main").into(),
        ref_is_tag: expected["ref_is_tag"].as_bool().unwrap_or(false),
        default_branch: "main".into(),
        project_path: "group/project".into(),
        project_id: 1,
        sha: "0123456789abcdef0123456789abcdef01234567".into(),
        commit_message: "Commit Title".into(),
        before_sha: "0".repeat(40),
        pipeline_variables: strings(&expected["variables"]),
        project_variables: strings(&expected["project_variables"]),
        inputs: match super::yaml::from_json(&expected["inputs"]) {
            super::yaml::Yaml::Map(m) => m,
            _ => Default::default(),
        },
        merge_request: (expected["source"] == "merge_request_event").then(|| super::plan::MergeRequest {
            iid: 1,
            source_branch: expected["ref"].as_str().unwrap_or("main").into(),
            target_branch: "main".into(),
            ..Default::default()
        }),
        ..Context::default()
    };
    let mut files = Vec::new();
    files_under(dir, dir, &mut files);
    let source = CaseSource {
        dir: dir.to_path_buf(),
        pushed: expected["changed_files"].as_array().map(|a| paths(a)),
        compare_to: expected["compare_to"].clone(),
    };
    let outcome = plan(&source, &files, &ctx);
    let expect = &expected["expect"];
    if expect["created"] == Value::Bool(false) {
        let message = match &outcome {
            Ok(p) => {
                return Err(format!(
                    "created jobs {:?}, expected an error",
                    p.jobs.iter().map(|j| &j.name).collect::<Vec<_>>()
                ));
            }
            Err(PlanError::Config(m) | PlanError::Filtered(m) | PlanError::Inputs(m)) => m.clone(),
        };
        let mut wanted = vec![expect["error"].as_str().unwrap_or_default().to_string()];
        wanted.extend(
            expect["error_alternatives"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(String::from)),
        );
        return if wanted.iter().any(|w| message.contains(w.as_str())) {
            Ok(())
        } else {
            Err(format!("error {message:?}, expected one of {wanted:?}"))
        };
    }
    let plan = outcome.map_err(|e| format!("not created: {e:?}"))?;
    let mut errors = Vec::new();
    let want_jobs = expect["jobs"].as_object().cloned().unwrap_or_default();
    let mut got_names: Vec<&str> = plan.jobs.iter().map(|j| j.name.as_str()).collect();
    let mut want_names: Vec<&str> = want_jobs.keys().map(String::as_str).collect();
    got_names.sort();
    want_names.sort();
    if got_names != want_names {
        errors.push(format!("jobs {got_names:?}, expected {want_names:?}"));
    }
    for (name, want) in &want_jobs {
        if let Some(job) = plan.jobs.iter().find(|j| j.name == *name) {
            errors.extend(check_job(job, want));
        }
    }
    if let Some(order) = expect["stage_order"].as_array() {
        let order: Vec<&str> = order.iter().filter_map(Value::as_str).collect();
        if plan.stages != order {
            errors.push(format!("stage order {:?}, expected {order:?}", plan.stages));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join("; "))
    }
}

fn check_job(job: &PlannedJob, want: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let mut differs = |what: &str, got: Value, expected: &Value| {
        if got != *expected {
            errors.push(format!("{}: {what} {got}, expected {expected}", job.name));
        }
    };
    differs("stage", Value::from(job.stage.clone()), &want["stage"]);
    differs("when", Value::from(job.when.clone()), &want["when"]);
    differs("allow_failure", Value::from(job.allow_failure), &want["allow_failure"]);
    for (key, got) in [
        ("script", &job.script),
        ("before_script", &job.before_script),
        ("after_script", &job.after_script),
    ] {
        if let Some(w) = want.get(key) {
            differs(key, Value::from(got.clone()), w);
        }
    }
    if let Some(w) = want.get("needs") {
        differs("needs", job.needs.clone().map_or(Value::Null, Value::from), w);
    }
    if let Some(w) = want.get("allow_failure_exit_codes") {
        differs(
            "allow_failure_exit_codes",
            Value::from(job.allow_failure_exit_codes.clone()),
            w,
        );
    }
    if let Some(vars) = want.get("variables").and_then(Value::as_object) {
        for (k, v) in vars {
            let got = job
                .variables
                .iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| Value::from(v.clone()))
                .unwrap_or(Value::Null);
            differs(&format!("variable {k}"), got, v);
        }
    }
    for absent in want
        .get("variables_absent")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if job.variables.iter().any(|(n, _)| Some(n.as_str()) == absent.as_str()) {
            errors.push(format!("{}: variable {absent} should be absent", job.name));
        }
    }
    errors
}

#[test]
fn spec_cases() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .expect("tests/data/ci-cases")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 40, "the cases were not found");
    let mut report = Vec::new();
    for dir in &dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let known = KNOWN_FAILING.iter().any(|(k, _)| *k == name);
        match (check(dir), known) {
            (Ok(()), false) | (Err(_), true) => {}
            (Ok(()), true) => report.push(format!("{name}: passes now; remove it from KNOWN_FAILING")),
            (Err(e), false) => report.push(format!("{name}: {e}")),
        }
    }
    assert!(
        report.is_empty(),
        "{} case(s) differ:\n{}",
        report.len(),
        report.join("\n")
    );
}
