//! Planning a pipeline from `.gitlab-ci.yml` (spec section 1): compose, validate, decide which
//! jobs run for this source, ref and variables, and with which attributes. Pure: the caller
//! passes a file reader and the list of files at the pipeline's commit.

use super::compose::FileSource;
use super::composed::{Composed, compose_config, composed};
use super::needs::{OPTIONAL_MARK, check_needs, matrix_expressions, resolve_needs};
use super::parallel::parallel_instances;
use super::policy::{self, Situation};
use super::predefined::{predefined, user_vars};
use super::validate::{GLOBAL_KEYS, needs_entries};
use super::variables::{self, VarList};
use super::yaml::{self, Mapping, Yaml};

/// GitLab 14–16's text for a pipeline left without jobs.
pub const NO_JOBS: &str = "Pipeline will not run for the selected trigger. The rules configuration prevented any jobs from being added to the pipeline.";
/// GitLab 14–16's text for a pipeline that `workflow:rules` filtered out.
pub const FILTERED_BY_WORKFLOW: &str = "Pipeline filtered out by workflow rules.";

const DEFAULTABLE: [&str; 12] = [
    "before_script",
    "after_script",
    "hooks",
    "cache",
    "image",
    "services",
    "interruptible",
    "timeout",
    "retry",
    "tags",
    "artifacts",
    "id_tokens",
];

/// What a pipeline is planned for.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// `CI_PIPELINE_SOURCE`: `trigger`, `pipeline`, `push`, `api`, `web`, ...
    pub source: String,
    /// Short ref name.
    pub ref_name: String,
    /// Whether the ref is a tag.
    pub ref_is_tag: bool,
    /// The project's default branch.
    pub default_branch: String,
    /// `namespace/project`.
    pub project_path: String,
    /// The project's id.
    pub project_id: u64,
    /// The commit.
    pub sha: String,
    /// The commit message.
    pub commit_message: String,
    /// The commit before a push (`CI_COMMIT_BEFORE_SHA`); 40 zeros otherwise.
    pub before_sha: String,
    /// Pipeline variables (trigger, API, web form): highest precedence.
    pub pipeline_variables: Vec<(String, String)>,
    /// Project CI/CD variables.
    pub project_variables: Vec<(String, String)>,
    /// The pipeline's inputs for `.gitlab-ci.yml`'s `spec:inputs` (from the API or a form).
    pub inputs: Mapping,
    /// The server's external URL (`CI_SERVER_URL` and friends); `http://localhost` when empty.
    pub server_url: String,
    /// Whether the ref is protected (`CI_COMMIT_REF_PROTECTED`).
    pub ref_protected: bool,
    /// The merge request of a `merge_request_event` pipeline.
    pub merge_request: Option<MergeRequest>,
    /// The names of masked project variables (`expand_vars` refuses to expand them).
    pub masked_variables: Vec<String>,
    /// The names of raw project and pipeline variables (`$` in them is text).
    pub raw_variables: Vec<String>,
}

/// The merge request a merge-request pipeline runs for (`CI_MERGE_REQUEST_*`).
#[derive(Debug, Clone, Default)]
pub struct MergeRequest {
    /// Its IID in the project.
    pub iid: u64,
    /// The branch it merges from.
    pub source_branch: String,
    /// The branch it merges into.
    pub target_branch: String,
    /// Its title.
    pub title: String,
    /// Its labels.
    pub labels: Vec<String>,
}

/// A job the pipeline will have.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedJob {
    /// Name (`name 1/3` for parallel instances).
    pub name: String,
    /// Stage.
    pub stage: String,
    /// `on_success`, `on_failure`, `always`, `manual` or `delayed`.
    pub when: String,
    /// Whether a failure is tolerated.
    pub allow_failure: bool,
    /// Exit codes that count as allowed failures.
    pub allow_failure_exit_codes: Vec<i64>,
    /// Needed jobs (`None`: stage order; `Some([])`: start at once).
    pub needs: Option<Vec<String>>,
    /// `before_script`, flattened.
    pub before_script: Vec<String>,
    /// `script`, flattened.
    pub script: Vec<String>,
    /// `after_script`, flattened.
    pub after_script: Vec<String>,
    /// Every variable the job sees, expanded, in precedence order.
    pub variables: Vec<(String, String)>,
    /// The raw `trigger:` of a bridge job.
    pub trigger: Option<Yaml>,
    /// The job's YAML variables (top-level as inherited, job, rule), expanded: what a bridge
    /// forwards downstream.
    pub yaml_variables: Vec<(String, String)>,
    /// The job mapping after composition and defaults, for keys the executor reads itself.
    pub config: Mapping,
}

/// A planned pipeline.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Stages that hold at least one job, in order.
    pub stages: Vec<String>,
    /// Jobs in stage order, then file order.
    pub jobs: Vec<PlannedJob>,
    /// `workflow:name`, expanded (at most 255 characters).
    pub name: Option<String>,
}

/// Why no pipeline is planned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The configuration is invalid (GitLab persists a failed pipeline; 422 through triggers).
    Config(String),
    /// Nothing to run: workflow rules or job rules filtered everything (400, not persisted).
    Filtered(String),
    /// `.gitlab-ci.yml`'s inputs or header are wrong (GitLab's interpolation messages).
    Inputs(String),
}

/// Plans a pipeline. `source` gives configuration files; `files` lists every path of the
/// pipeline's repository (for `rules:exists`).
pub fn plan(source: &dyn FileSource, files: &[String], ctx: &Context) -> Result<Plan, PlanError> {
    let pushed = source.pushed_changes();
    let composed = composed(source, files, ctx, pushed.as_deref())?;
    let Composed {
        config,
        stages,
        jobs,
        defaults,
        has_workflow_rules,
    } = &*composed;
    let has_workflow_rules = *has_workflow_rules;
    let situation = situation(ctx, source, files, pushed.as_deref());
    let top_vars = variables::from_yaml(config.get("variables"), "root").map_err(PlanError::Config)?;
    let workflow_vars = evaluate_workflow(config, &top_vars, ctx, &situation)?;
    let shared = Shared {
        base: predefined(ctx),
        outside: {
            let mut o = user_vars(&ctx.project_variables, &ctx.raw_variables);
            o.extend(&user_vars(&ctx.pipeline_variables, &ctx.raw_variables));
            o
        },
        top: &top_vars,
        workflow_vars: &workflow_vars,
        situation: &situation,
        has_workflow_rules,
    };
    let mut planned = Vec::new();
    for stage in stages {
        for (name, job) in jobs.iter().filter(|(_, j)| job_stage(j) == *stage) {
            let job = with_defaults(job, defaults);
            for (instance, instance_vars) in parallel_instances(name, &job) {
                if let Some(p) = plan_job(&instance, &job, stage, &instance_vars, &shared)? {
                    planned.push(p);
                }
            }
        }
    }
    check_needs(jobs, &planned).map_err(PlanError::Config)?;
    resolve_needs(&mut planned);
    let used: Vec<String> = stages
        .iter()
        .filter(|s| planned.iter().any(|j| j.stage == **s))
        .cloned()
        .collect();
    if used.iter().all(|s| s == ".pre" || s == ".post") {
        return Err(PlanError::Filtered(NO_JOBS.into()));
    }
    let name = workflow_name(config, &shared);
    Ok(Plan {
        stages: used,
        jobs: planned,
        name,
    })
}

/// The situation of the pipeline `ctx` describes, on `repo` with `files` at its commit.
pub(super) fn situation<'a>(
    ctx: &'a Context,
    repo: &'a dyn FileSource,
    files: &'a [String],
    pushed: Option<&'a [String]>,
) -> Situation<'a> {
    Situation {
        pushed,
        repo,
        source: &ctx.source,
        ref_name: &ctx.ref_name,
        ref_is_tag: ctx.ref_is_tag,
        project_path: &ctx.project_path,
        files,
    }
}

/// `workflow:name` with the pipeline's global variables expanded (predefined, project and
/// pipeline variables, the top-level `variables:` and the matched workflow rule's), cut to
/// GitLab's 255 characters.
fn workflow_name(config: &Mapping, shared: &Shared<'_>) -> Option<String> {
    let Some(Yaml::Map(workflow)) = config.get("workflow") else {
        return None;
    };
    let Some(Yaml::Str(name)) = workflow.get("name") else {
        return None;
    };
    let mut vars = shared.base.clone();
    vars.extend(shared.top);
    vars.extend(&shared.outside);
    vars.extend(shared.workflow_vars);
    let expanded = vars.expanded().unwrap_or_default();
    let text = super::job_settings::expand(name, &expanded);
    let text: String = text.chars().take(255).collect();
    (!text.trim().is_empty()).then_some(text)
}

/// The configuration after includes, `extends` and `!reference`, as YAML text: the lint API's
/// `merged_yaml`.
pub fn merged_yaml(source: &dyn FileSource) -> Result<String, String> {
    let config = compose_config(source, None, &Mapping::default()).map_err(|e| match e {
        PlanError::Config(m) | PlanError::Filtered(m) | PlanError::Inputs(m) => m,
    })?;
    yaml_serde::to_string(&yaml::to_json(&Yaml::Map(config))).map_err(|e| e.to_string())
}

/// `.pre`, the user's stages (flattened, deduplicated) or `build, test, deploy`, then `.post`.
pub(super) fn stages(config: &Mapping) -> Result<Vec<String>, String> {
    let mut listed = Vec::new();
    match config.get("stages") {
        None => listed.extend(["build", "test", "deploy"].map(String::from)),
        Some(Yaml::Seq(items)) => flatten_strings(items, 0, &mut listed)
            .map_err(|_| "stages config should be an array of strings".to_string())?,
        Some(_) => return Err("stages config should be an array of strings".into()),
    }
    let mut out = vec![".pre".to_string()];
    for s in listed {
        if s != ".pre" && s != ".post" && !out.contains(&s) {
            out.push(s);
        }
    }
    out.push(".post".into());
    Ok(out)
}

fn flatten_strings(items: &[Yaml], depth: usize, out: &mut Vec<String>) -> Result<(), ()> {
    for item in items {
        match item {
            // The outer list and nine more levels: ten nested arrays, as GitLab allows.
            Yaml::Seq(inner) if depth < 9 => flatten_strings(inner, depth + 1, out)?,
            other => out.push(variables::scalar_text(other).ok_or(())?),
        }
    }
    Ok(())
}

/// A script-like value: a string or a nested list of strings, flattened.
fn script_lines(y: Option<&Yaml>, location: &str, key: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    match y {
        None | Some(Yaml::Null) => {}
        Some(Yaml::Seq(items)) => flatten_strings(items, 0, &mut out).map_err(|_| {
            format!("{location}:{key} config should be a string or a nested array of strings up to 10 levels deep")
        })?,
        Some(other) => out.push(variables::scalar_text(other).ok_or_else(|| {
            format!("{location}:{key} config should be a string or a nested array of strings up to 10 levels deep")
        })?),
    }
    Ok(out)
}

/// Visible jobs in file order; hidden keys and globals are skipped.
pub(super) fn job_definitions(config: &Mapping) -> Result<Vec<(String, Mapping)>, String> {
    let mut jobs = Vec::new();
    for (name, value) in config.iter() {
        if GLOBAL_KEYS.contains(&name.as_str()) || name.starts_with('.') {
            continue;
        }
        match value {
            Yaml::Map(m) if m.get("script").is_some() || m.get("run").is_some() || m.get("trigger").is_some() => {
                jobs.push((name.clone(), m.clone()));
            }
            _ => {
                return Err(
                    format!("jobs {name} config should implement the script:, run:, or trigger: keyword")
                        .to_lowercase(),
                );
            }
        }
    }
    if jobs.is_empty() {
        return Err("jobs config should contain at least one visible job".into());
    }
    Ok(jobs)
}

pub(super) fn job_stage(job: &Mapping) -> String {
    job.get("stage")
        .and_then(variables::scalar_text)
        .unwrap_or_else(|| "test".into())
}

/// `default:` plus the deprecated top-level keys, refusing a key defined in both.
pub(super) fn defaults(config: &Mapping) -> Result<Mapping, String> {
    let mut out = match config.get("default") {
        Some(Yaml::Map(m)) => m.clone(),
        _ => Mapping::default(),
    };
    for key in ["before_script", "after_script", "image", "services", "cache"] {
        if let Some(v) = config.get(key) {
            if out.get(key).is_some() {
                return Err(format!("{key} is defined in top-level and `default:` entry"));
            }
            out.insert(key.into(), v.clone());
        }
    }
    Ok(out)
}

/// Copies default keys the job does not define, honouring `inherit:default`.
fn with_defaults(job: &Mapping, defaults: &Mapping) -> Mapping {
    let allowed: Option<Vec<String>> = match job
        .get("inherit")
        .and_then(|i| if let Yaml::Map(m) = i { m.get("default") } else { None })
    {
        Some(Yaml::Bool(false)) => Some(Vec::new()),
        Some(Yaml::Seq(items)) => Some(items.iter().filter_map(variables::scalar_text).collect()),
        _ => None,
    };
    let mut out = job.clone();
    for (key, value) in defaults.iter() {
        let inherited = DEFAULTABLE.contains(&key.as_str()) && allowed.as_ref().is_none_or(|a| a.contains(key));
        if inherited && out.get(key).is_none() {
            out.insert(key.clone(), value.clone());
        }
    }
    out
}

pub(super) fn workflow_rules(config: &Mapping) -> Option<&Yaml> {
    match config.get("workflow") {
        Some(Yaml::Map(w)) => w.get("rules"),
        _ => None,
    }
}

/// Runs `workflow:rules`; returns the matched rule's variables.
fn evaluate_workflow(
    config: &Mapping,
    top: &VarList,
    ctx: &Context,
    situation: &Situation<'_>,
) -> Result<VarList, PlanError> {
    let Some(rules) = workflow_rules(config) else {
        return Ok(VarList::default());
    };
    let mut vars = predefined(ctx);
    vars.extend(top);
    vars.extend(&user_vars(&ctx.project_variables, &ctx.raw_variables));
    vars.extend(&user_vars(&ctx.pipeline_variables, &ctx.raw_variables));
    let flat = policy::flatten_rules(rules);
    match policy::first_match(&flat, &vars, situation, "workflow").map_err(PlanError::Config)? {
        Some(m) if m.when.as_deref() != Some("never") => Ok(m.variables),
        _ => Err(PlanError::Filtered(FILTERED_BY_WORKFLOW.into())),
    }
}

/// What every job of a pipeline is planned against, computed once.
struct Shared<'a> {
    /// The predefined variables (no `CI_JOB_*`).
    base: VarList,
    /// Project and pipeline variables: above everything from the YAML.
    outside: VarList,
    top: &'a VarList,
    workflow_vars: &'a VarList,
    situation: &'a Situation<'a>,
    has_workflow_rules: bool,
}

/// Decides one job (instance): rules or only/except, then its attributes.
fn plan_job(
    name: &str,
    job: &Mapping,
    stage: &str,
    instance_vars: &VarList,
    shared: &Shared<'_>,
) -> Result<Option<PlannedJob>, PlanError> {
    let Shared {
        base,
        outside,
        top,
        workflow_vars,
        situation,
        has_workflow_rules,
    } = shared;
    let location = format!("jobs:{name}");
    let config_err = |e: String| PlanError::Config(e);
    let job_vars = variables::from_yaml(job.get("variables"), &location).map_err(config_err)?;
    let mut vars = base.clone();
    vars.set("CI_JOB_NAME", name, false);
    vars.set("CI_JOB_STAGE", stage, false);
    vars.extend(instance_vars);
    let inherited = inherited_top_vars(job, top, workflow_vars);
    let mut yaml_names: Vec<String> = inherited
        .0
        .iter()
        .chain(&job_vars.0)
        .map(|v| String::from(&*v.name))
        .collect();
    vars.extend(&inherited);
    vars.extend(&job_vars);
    // Rules see project and pipeline variables above the YAML's (without any, `vars` itself).
    let visible_owned;
    let visible = if outside.0.is_empty() {
        &vars
    } else {
        let mut v = vars.clone();
        v.extend(outside);
        visible_owned = v;
        &visible_owned
    };
    let job_when = job.get("when").and_then(variables::scalar_text);
    let (static_allow, exit_codes) = allow_failure(job.get("allow_failure"));
    let mut needs = job.get("needs").cloned();
    let (when, allow, codes) = match job.get("rules") {
        Some(rules) => {
            let flat = policy::flatten_rules(rules);
            let Some(m) = policy::first_match(&flat, visible, situation, &location).map_err(config_err)? else {
                return Ok(None);
            };
            if m.when.as_deref() == Some("never") {
                return Ok(None);
            }
            let when = m
                .when
                .clone()
                .or(job_when.clone())
                .unwrap_or_else(|| "on_success".into());
            let allow = m
                .allow_failure
                .or(static_allow)
                .unwrap_or(job_when.as_deref() == Some("manual"));
            let codes = if m.allow_failure.is_some() {
                Vec::new()
            } else {
                exit_codes
            };
            vars.extend(&m.variables);
            yaml_names.extend(m.variables.0.iter().map(|v| String::from(&*v.name)));
            if m.needs.is_some() {
                needs = m.needs;
            }
            (when, allow, codes)
        }
        None => {
            let implicit = job.get("only").is_none() && !*has_workflow_rules;
            if !policy::only_except_allows(job.get("only"), job.get("except"), implicit, visible, situation) {
                return Ok(None);
            }
            let when = job_when.clone().unwrap_or_else(|| "on_success".into());
            let allow = static_allow.unwrap_or(when == "manual");
            (when, allow, exit_codes)
        }
    };
    let (variables, yaml_variables) = if outside.0.is_empty() {
        // Nothing from outside to shadow: the YAML's variables are these, expanded.
        let variables = vars.expanded().map_err(config_err)?;
        let own = variables
            .iter()
            .filter(|(k, _)| yaml_names.contains(k))
            .cloned()
            .collect();
        (variables, own)
    } else {
        let mut yaml_only = VarList::default();
        for v in vars.0.iter().filter(|v| yaml_names.iter().any(|n| **n == *v.name)) {
            yaml_only.set(&v.name, &v.value, v.raw);
        }
        vars.extend(outside);
        let variables = vars.expanded().map_err(config_err)?;
        let mut context = vars.clone();
        context.extend(&yaml_only);
        (variables, context.expanded_only(&yaml_names).map_err(config_err)?)
    };
    Ok(Some(PlannedJob {
        name: name.to_string(),
        stage: stage.to_string(),
        when,
        allow_failure: allow,
        allow_failure_exit_codes: codes,
        needs: needs.map(|n| {
            needs_entries(&n)
                .into_iter()
                .map(|(n, optional)| {
                    let n = matrix_expressions(&n, instance_vars);
                    if optional { format!("{OPTIONAL_MARK}{n}") } else { n }
                })
                .collect()
        }),
        before_script: script_lines(job.get("before_script"), &location, "before_script").map_err(config_err)?,
        script: script_lines(job.get("script"), &location, "script").map_err(config_err)?,
        after_script: script_lines(job.get("after_script"), &location, "after_script").map_err(config_err)?,
        variables,
        trigger: job.get("trigger").cloned(),
        yaml_variables,
        config: job.clone(),
    }))
}

/// Top-level variables (overridden by workflow rule variables) as `inherit:variables` allows.
fn inherited_top_vars(job: &Mapping, top: &VarList, workflow_vars: &VarList) -> VarList {
    let mut all = top.clone();
    all.extend(workflow_vars);
    let inherit = job
        .get("inherit")
        .and_then(|i| if let Yaml::Map(m) = i { m.get("variables") } else { None });
    match inherit {
        Some(Yaml::Bool(false)) => VarList::default(),
        Some(Yaml::Seq(names)) => {
            let names: Vec<String> = names.iter().filter_map(variables::scalar_text).collect();
            VarList(
                all.0
                    .into_iter()
                    .filter(|v| names.iter().any(|n| **n == *v.name))
                    .collect(),
            )
        }
        _ => all,
    }
}

/// The static `allow_failure` flag and its exit codes.
fn allow_failure(y: Option<&Yaml>) -> (Option<bool>, Vec<i64>) {
    match y {
        Some(Yaml::Map(m)) => {
            let codes = match m.get("exit_codes") {
                Some(Yaml::Int(c)) => vec![*c],
                Some(Yaml::Seq(items)) => items
                    .iter()
                    .filter_map(|i| if let Yaml::Int(c) = i { Some(*c) } else { None })
                    .collect(),
                _ => Vec::new(),
            };
            (Some(false), codes)
        }
        Some(other) => (policy::lenient_bool(other), Vec::new()),
        None => (None, Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_text(text: &str) -> Result<Plan, PlanError> {
        let ctx = Context {
            source: "trigger".into(),
            ref_name: "main".into(),
            ..Context::default()
        };
        plan(
            &|p: &str| (p == ".gitlab-ci.yml").then(|| text.to_string()),
            &[".gitlab-ci.yml".to_string()],
            &ctx,
        )
    }

    #[test]
    fn a_remembered_configuration_is_planned_afresh_for_each_pipeline() {
        let text = "variables:\n  WHO: yaml\njob:\n  script: [echo $WHO]\n  rules:\n    - if: $GO == \"yes\"\n";
        let files = [".gitlab-ci.yml".to_string()];
        let source = |p: &str| (p == ".gitlab-ci.yml").then(|| text.to_string());
        let with = |go: &str| Context {
            source: "trigger".into(),
            ref_name: "main".into(),
            pipeline_variables: vec![("GO".into(), go.into())],
            ..Context::default()
        };
        // The same text twice (the second from the cache): the rules see each pipeline's own
        // variables.
        assert!(matches!(
            plan(&source, &files, &with("no")),
            Err(PlanError::Filtered(_))
        ));
        let planned = plan(&source, &files, &with("yes")).unwrap();
        assert_eq!(planned.jobs.len(), 1);
        assert!(planned.jobs[0].variables.iter().any(|(k, v)| k == "GO" && v == "yes"));
        // A configuration with an error is never remembered as good.
        let bad = "job:\n  script: [x]\n  stage: nowhere\n";
        let source = |p: &str| (p == ".gitlab-ci.yml").then(|| bad.to_string());
        for _ in 0..2 {
            assert!(matches!(plan(&source, &files, &with("yes")), Err(PlanError::Config(_))));
        }
    }

    #[test]
    fn parallel_is_bounded() {
        assert_eq!(plan_text("job:\n  script: x\n  parallel: 3\n").unwrap().jobs.len(), 3);
        assert_eq!(
            plan_text("job:\n  script: x\n  parallel: 1\n").unwrap().jobs[0].name,
            "job 1/1"
        );
        for (n, want) in [
            ("0", "must be greater than or equal to 1"),
            ("-5", "must be greater than or equal to 1"),
            ("201", "must be less than or equal to 200"),
            ("1000000000", "must be less than or equal to 200"),
        ] {
            let err = plan_text(&format!("job:\n  script: x\n  parallel: {n}\n")).unwrap_err();
            assert_eq!(
                err,
                PlanError::Config(format!("jobs:job:parallel config {want}")),
                "{n}"
            );
        }
        let matrix = "job:\n  script: x\n  parallel:\n    matrix:\n      - A: [1,2,3,4,5,6,7,8,9,10]\n        B: [1,2,3,4,5,6,7,8,9,10]\n        C: [1,2,3]\n";
        assert!(
            matches!(plan_text(matrix), Err(PlanError::Config(_))),
            "300 combinations"
        );
    }
}
